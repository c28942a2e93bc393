"""Real services for integration tests: Debian's docker-registry, a private dockerd, and
isolated docker client environments (config dir, credential helpers).

The plugin's value is that a listed digest really pulls, so integration tests run the real
thing: a CNCF distribution registry holding images built here, and a throw-away dockerd
(vfs, no networking, private sockets) that pulls them. Nothing touches the machine's own
engine or ~/.docker.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from .front import history_from_digests

__all__ = [
    "Builds",
    "CredHelper",
    "DockerConfig",
    "Dockerd",
    "Registry",
    "build_images",
    "copy_repo",
    "history_from_digests",
    "in_ci",
    "make_cred_helper",
    "make_docker_config",
    "require_binary",
    "start_dockerd",
    "start_registry",
]

BUSYBOX = "/bin/busybox"
# Applets linked into every test image so `docker run IMAGE cat /build` etc. work.
_APPLETS = ("sh", "cat", "echo", "ls", "sleep", "true", "false", "env", "test", "grep")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> NoReturn:
    """A missing prerequisite: fails under CI (scripts/test.sh provides everything, and a run
    must never go green by skipping the tests that matter), skips elsewhere, so a laptop
    without docker.io still runs the unit tests."""
    import pytest

    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_file(path: Path, what: str) -> Path:
    """``path``, provided by an installed package: missing, it fails under CI, else skips."""
    if path.exists():
        return path
    unavailable(f"{what} is not installed: no {path} (scripts/test.sh installs it on Debian)")


def require_binary(name: str) -> str:
    """Path of ``name``; a missing binary fails under CI and skips elsewhere.

    CI must never go green by skipping the tests that matter, while a developer laptop
    without docker.io should still run the unit tests.
    """
    path = shutil.which(name)
    if path is None and os.path.exists(name) and os.access(name, os.X_OK):
        path = name
    if path:
        return path
    unavailable(f"{name} is not installed (scripts/test.sh installs it on Debian)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the leader, wait, then SIGKILL whatever is left of its session."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


# --------------------------------------------------------------------------- registry
@dataclass
class Registry:
    """A running docker-registry; ``host`` is what goes into image references."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        _stop_group(self.proc, grace=5)


_REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: cghistory-tests
"""


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    return False



def push_blob(registry: Registry, repo: str, data: bytes) -> str:
    """Upload ``data`` as a blob of ``repo`` straight to the registry (monolithic upload)."""
    import hashlib
    import urllib.request

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = urllib.request.Request(f"{registry.url}/v2/{repo}/blobs/uploads/", method="POST",
                                   data=b"")
    with urllib.request.urlopen(start, timeout=10) as response:
        location = response.headers["Location"]
    if location.startswith("/"):
        location = registry.url + location
    separator = "&" if "?" in location else "?"
    put = urllib.request.Request(f"{location}{separator}digest={digest}", method="PUT", data=data,
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(put, timeout=10):
        pass
    return digest

def start_registry(tmpdir: Path | str, timeout: float = 30.0) -> Registry:
    """Start docker-registry on a free loopback port, storing under ``tmpdir``."""
    binary = require_binary("docker-registry")
    tmp = Path(tmpdir)
    tmp.mkdir(parents=True, exist_ok=True)
    root = tmp / "data"
    log = tmp / "registry.log"
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = free_port()
        config = tmp / "config.yml"
        config.write_text(_REGISTRY_CONFIG.format(root=root, port=port))
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [binary, "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if _wait_http(f"http://127.0.0.1:{port}/v2/", proc, timeout):
            return Registry(proc=proc, port=port, root=root, log=log)
        _stop_group(proc, grace=2)
    raise RuntimeError(f"docker-registry did not start; log:\n{_tail(log)}")


def copy_repo(
    registry: Registry, src: str, dst: str, digests: Iterable[str], tag: str | None = None
) -> None:
    """Make manifests of ``src`` pullable from ``dst`` too, server-side (blob mounts).

    Lets one set of builds back a public and a private repo without pushing twice. With
    ``tag``, the last digest is also pushed under that tag, as the newest build would be.
    """
    base = registry.url
    digests = list(digests)
    for digest in digests:
        req = urllib.request.Request(
            f"{base}/v2/{src}/manifests/{digest}",
            headers={"Accept": ", ".join(_MANIFEST_TYPES)},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            manifest = resp.read()
            media_type = resp.headers["Content-Type"]
        doc = json.loads(manifest)
        blobs = [doc["config"]["digest"], *(layer["digest"] for layer in doc.get("layers", []))]
        for blob in blobs:
            mount = urllib.request.Request(
                f"{base}/v2/{dst}/blobs/uploads/?mount={blob}&from={src}", method="POST", data=b""
            )
            with urllib.request.urlopen(mount, timeout=30) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"blob mount {blob} {src}->{dst}: HTTP {resp.status}")
        refs = [digest] + ([tag] if tag and digest == digests[-1] else [])
        for ref in refs:
            put = urllib.request.Request(
                f"{base}/v2/{dst}/manifests/{ref}",
                method="PUT",
                data=manifest,
                headers={"Content-Type": media_type},
            )
            with urllib.request.urlopen(put, timeout=30):
                pass


_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)


# --------------------------------------------------------------------------- dockerd
@dataclass
class Dockerd:
    """A private dockerd; pass ``env`` to docker CLI subprocesses, ``host`` to docker-py."""

    proc: subprocess.Popen[bytes]
    root: Path
    socket_path: Path
    log: Path
    config_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def docker(
        self, *args: str, input: bytes | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the docker CLI against this engine with a private, empty DOCKER_CONFIG."""
        result = subprocess.run(
            ["docker", *args],
            input=input,
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stderr.decode(errors='replace')}"
            )
        return result

    def image_ids(self) -> list[str]:
        out = self.docker("images", "-q", "--no-trunc").stdout.decode()
        return [line for line in out.split() if line]

    def remove_all_images(self) -> None:
        """Return the engine to empty so a test sees only what it pulled."""
        ids = self.image_ids()
        if ids:
            self.docker("rmi", "-f", *sorted(set(ids)), check=False)

    def stop(self) -> None:
        _stop_group(self.proc, grace=20)
        _unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """Lazy-unmount leftovers (netns, shm) so the private tree can be deleted."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(root) + "/"
    fields = [m.split() for m in mounts]
    points = [f[1] for f in fields if len(f) > 1 and f[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def start_dockerd(tmpdir: Path | str | None = None, timeout: float = 60.0) -> Dockerd:
    """Start a private dockerd (root only) and wait until the CLI can talk to it.

    Everything lives under a short directory in /tmp, whatever ``tmpdir`` is: dockerd's
    containerd puts unix sockets under --exec-root and socket paths are limited to 107 bytes,
    which pytest's tmp paths easily exceed. ``tmpdir`` only receives the daemon log.
    """
    dockerd = require_binary("dockerd")
    require_binary("docker")
    if os.geteuid() != 0:
        unavailable("dockerd needs root")
    root = Path(tempfile.mkdtemp(prefix="cgh-", dir="/tmp"))
    log_dir = Path(tmpdir) if tmpdir is not None else root
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "dockerd.log"
    sock = root / "docker.sock"
    daemon_json = root / "daemon.json"
    daemon_json.write_text("{}\n")
    config_dir = root / "cli"
    config_dir.mkdir()
    (config_dir / "config.json").write_text("{}\n")
    cmd = [
        dockerd,
        "--config-file",
        str(daemon_json),
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--bridge=none",
        "--storage-driver=vfs",
        "--data-root",
        str(root / "data"),
        "--exec-root",
        str(root / "x"),
        "--pidfile",
        str(root / "docker.pid"),
        "-H",
        f"unix://{sock}",
        "--log-level",
        "warn",
    ]
    with log.open("ab") as out:
        # start_new_session is setsid(2): dockerd and its containerd get their own process
        # group, so stop() can kill both and Ctrl-C on pytest does not reach them first.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DOCKER_") or k == "DOCKER_BUILDKIT"
    }
    env.update(DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(config_dir))
    engine = Dockerd(
        proc=proc, root=root, socket_path=sock, log=log, config_dir=config_dir, env=env
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if sock.exists():
            ok = subprocess.run(
                ["docker", "version", "--format", "{{.Server.Version}}"],
                env=env,
                capture_output=True,
                timeout=10,
                check=False,
            )
            if ok.returncode == 0:
                return engine
        time.sleep(0.1)
    engine.stop()
    raise RuntimeError(f"dockerd did not become ready; log:\n{_tail(log)}")


# --------------------------------------------------------------------------- images
def _image_tar(marker: str) -> bytes:
    """A tiny runnable rootfs: static busybox, a few applet links and /build = marker."""
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
            info.mtime = 1_700_000_000  # deterministic layers: same marker, same digest
            info.uid = info.gid = 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        for d in ("bin", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            add(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(busybox), 0o755
        add(info, busybox)
        for applet in _APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            add(info)
        content = marker.encode()
        info = tarfile.TarInfo("build")
        info.size, info.mode = len(content), 0o644
        add(info, content)
    return buf.getvalue()


_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def build_images(
    dockerd: Dockerd,
    registry: Registry,
    repo: str,
    count: int,
    marker_fn: Callable[[int], str] | None = None,
    tag: str = "latest",
) -> list[str]:
    """Push ``count`` distinct builds of ``registry.host/repo:tag``; digests oldest first.

    Each build is a ``docker import`` of a busybox rootfs whose ``/build`` file holds
    ``marker_fn(i)`` (default ``build-<i>``), so a test can tell which build it pulled or
    ran. Images are removed from the engine afterwards: tests start from an empty engine.
    """
    marker_fn = marker_fn or (lambda i: f"build-{i}")
    ref = f"{registry.host}/{repo}:{tag}"
    digests: list[str] = []
    for i in range(count):
        dockerd.docker(
            "import", "--change", 'CMD ["/bin/sh"]', "-", ref, input=_image_tar(marker_fn(i))
        )
        out = dockerd.docker("push", ref).stdout.decode()
        m = _PUSH_DIGEST.search(out)
        if m:
            digest = m.group(1)
        else:
            inspect = dockerd.docker("inspect", "--format", "{{index .RepoDigests 0}}", ref)
            digest = inspect.stdout.decode().strip().rsplit("@", 1)[-1]
        digests.append(digest)
        dockerd.docker("rmi", "-f", ref)
    dockerd.remove_all_images()
    return digests


# --------------------------------------------------------------------------- test clients
# Credentials of the private repo that the `builds` fixture registers with the front.
PRIVATE_USER = "puller"
PRIVATE_PASSWORD = "pull-token-password"
PRIVATE_BEARER = "chainguard-helper-secret"
PRIVATE_IDENTITY_TOKEN = "identity-refresh-token"


@dataclass
class Builds:
    """Real images pushed to the registry and registered with the front.

    ``repo`` is public (anonymous for ``latest``/``latest-dev``); ``private_repo`` (an org
    name with a dot) needs credentials: Basic ``user``/``password``, ``bearer`` at the token
    endpoint, or the OAuth2 ``identity_token``. Both hold the same digests, oldest first;
    ``markers[i]`` is the content of ``/build`` in ``digests[i]``. ``tag`` is the history
    tag; ``private_tag`` is a non-public tag of the public repo with the same history.
    """

    repo: str
    private_repo: str
    tag: str
    private_tag: str
    digests: list[str]
    markers: list[str]
    history: list[list[str]]
    user: str = PRIVATE_USER
    password: str = PRIVATE_PASSWORD
    bearer: str = PRIVATE_BEARER
    identity_token: str = PRIVATE_IDENTITY_TOKEN


@dataclass
class DockerConfig:
    """An isolated docker client setup; pass ``env`` to every subprocess of a test.

    ``env`` points DOCKER_CONFIG, HOME and the XDG dirs into the test's tmp dir and puts
    ``bin_dir`` (credential helpers) first on PATH. DOCKER_HOST names a socket that does not
    exist unless the test uses the engine, so nothing ever reaches the machine's dockerd.
    """

    dir: Path
    home: Path
    cache: Path
    bin_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        return self.dir / "config.json"

    @property
    def plugins_dir(self) -> Path:
        return self.dir / "cli-plugins"

    def read(self) -> dict[str, Any]:
        if not self.config_file.exists():
            return {}
        return dict(json.loads(self.config_file.read_text()))

    def write(self, config: dict[str, Any]) -> None:
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")

    def update(self, **keys: Any) -> dict[str, Any]:
        """Merge top-level keys into config.json (e.g. ``auths=``, ``credHelpers=``)."""
        config = {**self.read(), **keys}
        self.write(config)
        return config

    def use_engine(self, engine: Dockerd) -> None:
        self.env["DOCKER_HOST"] = engine.host

    def run(
        self, *argv: str, input: str | None = None, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in this environment (cwd: the tmp HOME), capturing text output."""
        return subprocess.run(
            list(argv),
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            cwd=self.home,
        )

    def cghistory(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """``python -m docker_cghistory ARGS`` in this environment."""
        return self.run(sys.executable, "-m", "docker_cghistory", *args, **kwargs)


def make_docker_config(base: Path, engine: Dockerd | None = None) -> DockerConfig:
    """Build the isolated client environment under ``base`` (see DockerConfig)."""
    dirs = {name: base / name for name in ("docker", "home", "cache", "config", "bin")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCKER_", "CGHISTORY_", "COMP_", "_ARGCOMPLETE"))
    }
    env.update(
        DOCKER_CONFIG=str(dirs["docker"]),
        HOME=str(dirs["home"]),
        XDG_CACHE_HOME=str(dirs["cache"]),
        XDG_CONFIG_HOME=str(dirs["config"]),
        DOCKER_HOST=f"unix://{base}/no-engine.sock",
        PATH=os.pathsep.join([str(dirs["bin"]), os.environ.get("PATH", os.defpath)]),
        PYTHONDONTWRITEBYTECODE="1",
        # The LOCAL marks are asserted: wait for the engine however loaded the machine is.
        CGHISTORY_LOCAL_WAIT="120",
    )
    cfg = DockerConfig(dirs["docker"], dirs["home"], dirs["cache"], dirs["bin"], env)
    if engine is not None:
        cfg.use_engine(engine)
    return cfg


_HELPER = r'''#!{python}
"""docker-credential-{name}: a test double speaking the credential-helper protocol."""
import json
import sys

STORE = {store!r}
LOG = {log!r}


def load():
    with open(STORE) as f:
        return json.load(f)


def save(creds):
    with open(STORE, "w") as f:
        json.dump(creds, f)


action = sys.argv[1] if len(sys.argv) > 1 else ""
data = sys.stdin.read() if action in ("get", "store", "erase") else ""
with open(LOG, "a") as f:
    f.write(json.dumps([action, data.strip() if action != "store" else ""]) + "\n")
creds = load()
if action == "get":
    server = data.strip()
    if server not in creds:
        print("credentials not found in native keychain")
        sys.exit(1)
    user, secret = creds[server]
    print(json.dumps({{"ServerURL": server, "Username": user, "Secret": secret}}))
elif action == "store":
    obj = json.loads(data)
    creds[obj["ServerURL"]] = [obj["Username"], obj["Secret"]]
    save(creds)
elif action == "erase":
    creds.pop(data.strip(), None)
    save(creds)
elif action == "list":
    print(json.dumps({{k: v[0] for k, v in creds.items()}}))
else:
    print("unknown credential helper action " + repr(action))
    sys.exit(1)
'''


@dataclass
class CredHelper:
    """A fake ``docker-credential-<name>`` on the test PATH; ``calls()`` shows its use."""

    name: str
    path: Path
    store: Path
    log: Path

    def set(self, server: str, username: str, secret: str) -> None:
        creds = json.loads(self.store.read_text())
        creds[server] = [username, secret]
        self.store.write_text(json.dumps(creds))

    def credentials(self) -> dict[str, tuple[str, str]]:
        return {k: (v[0], v[1]) for k, v in json.loads(self.store.read_text()).items()}

    def calls(self) -> list[tuple[str, str]]:
        """(action, server) per invocation; what ``store`` received is not recorded."""
        if not self.log.exists():
            return []
        return [(a, s) for a, s in map(json.loads, self.log.read_text().splitlines())]


def make_cred_helper(
    bin_dir: Path, name: str, credentials: dict[str, tuple[str, str]] | None = None
) -> CredHelper:
    """Write an executable helper (shebang: this python) answering from ``credentials``.

    Like the real helpers, a miss prints "credentials not found in native keychain" on
    stdout and exits 1: the docker CLI and docker-py key on that exact text.
    """
    path = bin_dir / f"docker-credential-{name}"
    store = bin_dir / f".{name}-store.json"
    log = bin_dir / f".{name}-calls.log"
    store.write_text(json.dumps({k: list(v) for k, v in (credentials or {}).items()}))
    path.write_text(
        _HELPER.format(python=sys.executable, name=name, store=str(store), log=str(log))
    )
    path.chmod(0o755)
    return CredHelper(name, path, store, log)


TRANSIENT_PYTHON_WARNING = "docker-cghistory: warning: the plugin runs "


def install_stderr(stderr: str) -> str:
    """``install``'s stderr less the warning about a Python under /tmp.

    The checkout under test (and its .venv) may itself live under /tmp, as a CI clone may:
    the warning is then right, and not what these tests are about.
    """
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not line.startswith(TRANSIENT_PYTHON_WARNING))
