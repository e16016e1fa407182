"""A slow link for browser tests: a TCP proxy on loopback that carries the browser's connections to the app at a
given bit rate, shared by all of them (one link, each direction on its own), with a given round-trip time.

Chromium's own emulation (DevTools `Network.emulateNetworkConditions`) hangs now and then on a busy machine: some
requests never complete, whether it is switched on before the page opens or after (seen in 5 of 104 page
loads with training runs beside the browser; Playwright's issue 22676 reports the same). The benchmark
(bench/network_bench.py) keeps it, as the issue measured with it; a test that must not fail at random uses this.
"""
import asyncio
import threading
import time


class Link:
    """One direction of the link: each chunk leaves when the link is free after the chunks before it (of any
    connection), and arrives `delay_s` later."""

    def __init__(self, bits_per_s: float, delay_s: float):
        self.bytes_per_s, self.delay_s, self.free_at = bits_per_s / 8, delay_s, 0.0

    def arrival(self, size: int) -> float:
        start = max(time.monotonic(), self.free_at)
        self.free_at = start + size / self.bytes_per_s
        return self.free_at + self.delay_s


async def pump(reader, writer, link: Link) -> None:
    """Bytes from `reader` to `writer` over `link`, in order; the writer is closed after the last one."""
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver():
        while (item := await queue.get()) is not None:
            due, chunk = item
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(chunk)
            await writer.drain()
    delivering = asyncio.ensure_future(deliver())
    try:
        while chunk := await reader.read(16384):
            queue.put_nowait((link.arrival(len(chunk)), chunk))
    except ConnectionError:
        pass
    queue.put_nowait(None)
    try:
        await delivering
    except ConnectionError:
        pass
    finally:
        writer.close()


class ThrottledProxy:
    """`with ThrottledProxy(app_url, 5e6, 0.08) as url:` the app behind a 5 Mbit/s link with an 80 ms round trip."""

    def __init__(self, app_url: str, bits_per_s: float, rtt_s: float):
        host_port = app_url.split("//", 1)[1].split("/", 1)[0]
        self.host, self.port = host_port.rsplit(":", 1)
        self.down, self.up = Link(bits_per_s, rtt_s / 2), Link(bits_per_s, rtt_s / 2)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def connection(self, client_reader, client_writer) -> None:
        try:
            app_reader, app_writer = await asyncio.open_connection(self.host, int(self.port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, app_writer, self.up), pump(app_reader, client_writer, self.down))

    def __enter__(self) -> str:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self.connection, "127.0.0.1", 0), self.loop).result(10)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    def __exit__(self, *exc) -> None:
        async def shut() -> None:  # the page's connections still open (its heartbeat stream) end here
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
