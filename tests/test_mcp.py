"""The app as an assistant's tool (#38): MRNET_MCP=1 serves the typed API endpoints as MCP tools over streamable
HTTP. The `mcp` client package lists them and calls them on a sample and on uploaded .npy files; the reports equal
the /analyze API's, and hostile input gets the API's one sentence."""
import ast
import json

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file

from mrnet.sets.samples import BY_KEY, sample_file

from helpers import npy_bytes, run_async
from server import running_app

pytestmark = pytest.mark.slow


def report_of(result) -> dict:
    """A tool's text content as the report (Gradio writes a dict as JSON or as Python's repr)."""
    assert not result.isError, result.content
    text = result.content[0].text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def test_an_assistant_lists_and_calls_the_analysis_tools(tmp_path):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client
    with running_app({"MRNET_MCP": "1"}) as (url, proc, log):
        exam = np.load(sample_file(BY_KEY["phantom-acl"]))
        files = {}
        for plane in ("sagittal", "coronal"):
            (tmp_path / f"{plane}.npy").write_bytes(npy_bytes(exam[plane]))
            uploaded = httpx.post(url + "gradio_api/upload", files={"files": (f"{plane}.npy", npy_bytes(exam[plane]))})
            files[plane] = url + "gradio_api/file=" + uploaded.json()[0]
        bad = httpx.post(url + "gradio_api/upload", files={"files": ("axial.npy", b"\x93NUMPY\x01\x00garbage")}).json()[0]
        client = Client(url, verbose=False)
        api_sample = client.predict([handle_file(str(sample_file(BY_KEY["phantom-acl"])))], api_name="/analyze")
        api_planes = client.predict([handle_file(str(tmp_path / "sagittal.npy")), handle_file(str(tmp_path / "coronal.npy"))],
                                    api_name="/analyze")

        async def assistant():
            async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = {t.name: t for t in (await session.list_tools()).tools}
                    sample = await session.call_tool("analyze_sample", {"sample": "phantom-acl"})
                    planes = await session.call_tool("analyze", {"files": [files["sagittal"], files["coronal"]]})
                    hostile = await session.call_tool("analyze", {"files": [url + "gradio_api/file=" + bad]})
                    elsewhere = await session.call_tool("analyze", {"files": ["http://192.0.2.1/exam.npy"]})
                    return tools, sample, planes, hostile, elsewhere
        tools, sample, planes, hostile, elsewhere = run_async(assistant())
        assert {"analyze", "analyze_sample"} <= set(tools)
        assert "files" in tools["analyze"].inputSchema["properties"] and "JSON report" in tools["analyze"].description
        for got, expected in ((report_of(sample), api_sample), (report_of(planes), api_planes)):
            assert got["tasks"] == expected["tasks"] and got["disclaimer"] == expected["disclaimer"]
            assert "not for diagnosis" in got["disclaimer"].lower()
        # the decisive slices' overlays, as links an assistant can fetch: the app's own overlay of that slice
        import cv2

        from mrnet import analyze, compute_for, load_exam
        from mrnet.core.hub import resolve
        from mrnet.core.render import Renderer
        served = Renderer(analyze(load_exam([sample_file(BY_KEY["phantom-acl"])]), resolve("").weights, compute_for()))
        for report in (report_of(sample), api_sample):
            link = report["overlays"]["acl"]
            assert link["url"].startswith(url) and link["method"] == "shapley"
            assert (link["plane"], link["slice"]) == (report["tasks"]["acl"]["decisive_plane"],
                                                      report["tasks"]["acl"]["planes"][link["plane"]]["top_slice"])
            fetched = httpx.get(link["url"])
            assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
            png = cv2.imdecode(np.frombuffer(fetched.content, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
            np.testing.assert_array_equal(png, served.overlay("acl", link["plane"], link["slice"], "shapley"))
        assert hostile.isError and "not a valid .npy file" in hostile.content[0].text
        assert "Traceback" not in hostile.content[0].text
        assert elsewhere.isError and "not a file uploaded with this request" in elsewhere.content[0].text
