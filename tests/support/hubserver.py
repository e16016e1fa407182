"""A real hub-compatible server for the tests: olah in offline mode, serving model repos from local git
repositories under mirrors/models/ORG/NAME."""
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from server import free_port

GIT = ["git", "-c", "user.email=tests@mrnet", "-c", "user.name=tests"]


def git_repo_with(folder: Path, files_from: Path, message: str) -> str:
    """Copy the weights files into a git repo (created if needed), commit, return the commit sha."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".git").exists():
        subprocess.run(GIT + ["init", "-q", "-b", "main"], cwd=folder, check=True)
    for f in files_from.iterdir():
        if f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    subprocess.run(GIT + ["add", "-A"], cwd=folder, check=True)
    subprocess.run(GIT + ["commit", "-q", "-m", message], cwd=folder, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, check=True, capture_output=True,
                          text=True).stdout.strip()


class HubServer:
    def __init__(self, root: Path):
        self.root = root
        self.mirrors = root / "mirrors"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def repo(self, name: str) -> Path:
        return self.mirrors / "models" / name

    def start(self, attempts: int = 3):
        """Start olah; a restart on the same port can race the old socket's release, so retry."""
        for attempt in range(attempts):
            try:
                return self._start()
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1.0)

    def _start(self):
        config = self.root / "olah.toml"
        config.write_text(f"""[basic]
host = "127.0.0.1"
port = {self.port}
repos-path = "{self.root / 'repos'}"
mirror-netloc = "127.0.0.1:{self.port}"
mirror-lfs-netloc = "127.0.0.1:{self.port}"
mirrors-path = ["{self.mirrors}"]
[accessibility]
offline = true
""")
        olah = Path(sys.executable).parent / "olah-cli"
        self.log = open(self.root / "olah.log", "w")
        self.proc = subprocess.Popen([str(olah), "-c", str(config)], cwd=self.root, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/models/none/none/revision/main", timeout=2)
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError((self.root / "olah.log").read_text())
                time.sleep(0.3)
            else:
                break
        return self

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.log.close()
            self.proc = None
