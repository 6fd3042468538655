"""What the kubelite images are made of: references, Dockerfiles, small programs, content keys.

Pure definitions and helpers for `kubelite.images`, which does the IO (debootstrap, pip, Docker).
Nothing here touches the disk, the network or Docker, so all of it is unit-tested. The image
inputs live here as text rather than as package data so that they ship with any install of
kubelite.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from pathlib import PurePosixPath

# --- references other code uses -----------------------------------------------------------

KUBELITE_IMAGE = "kubelite/kubelite:latest"
PAUSE_IMAGE = "kubelite/pause:latest"
BUSYBOX_IMAGE = "kubelite/busybox:latest"
WHOAMI_IMAGE = "kubelite/whoami:latest"
# Versions of whoami that answer with their version too: two releases to roll a Deployment between.
WHOAMI_VERSIONS = ("1.0", "2.0")
DEBIAN_IMAGE = "kubelite/debian:bookworm"

HASH_LABEL = "io.kubelite.image.hash"
"""Label holding the full content key of an image; its first 16 hex digits are also a tag."""

DEPS_LABEL = "io.kubelite.deps"
"""Label of the kubelite image's dependency stage: the key of its inputs."""

WHOAMI_PORT = 8080

# --- the Debian base ----------------------------------------------------------------------

DEBIAN_SUITE = "bookworm"
DEBIAN_VARIANT = "minbase"
DEBIAN_PACKAGES = ("python3", "python-is-python3", "python3-pip", "busybox-static")
"""python3 is 3.11 in bookworm, matching the wheels; busybox-static feeds the scratch images."""
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_GLIBC = (2, 36)
"""bookworm's glibc: the newest manylinux tag its python3 accepts."""
WHEEL_PYTHON_VERSION = "3.11"

# The Python packages of this repository that go into the kubelite image.
SOURCE_PACKAGES = ("kubelite", "etcdlite", "apiserver", "scheduler", "controller", "kubelet", "proxy")
_SKIPPED_DIRS = {"__pycache__", ".git", ".venv", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".swp", "~")

# Bump one of these to force a rebuild of that image (and of the images built on it).
_DEBIAN_FORMAT = "1"
_BUSYBOX_FORMAT = "1"
_WHOAMI_FORMAT = "1"
_PAUSE_FORMAT = "1"
_KUBELITE_FORMAT = "1"


def content_hash(parts: Iterable[bytes | str]) -> str:
    """sha256 over length-prefixed parts, so ("ab", "c") and ("a", "bc") differ."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def hash_tag(key: str) -> str:
    """The tag an image with content key `key` carries next to `latest`."""
    return key[:16]


def repository(reference: str) -> str:
    """'kubelite/pause:latest' -> 'kubelite/pause'."""
    name, _, _tag = reference.rpartition(":")
    return name


def debian_key() -> str:
    return content_hash(["debian", _DEBIAN_FORMAT, DEBIAN_SUITE, DEBIAN_VARIANT, *sorted(DEBIAN_PACKAGES)])


def busybox_key(debian: str) -> str:
    return content_hash(["busybox", _BUSYBOX_FORMAT, debian, BUSYBOX_DOCKERFILE, PASSWD, GROUP])


def whoami_key(busybox: str) -> str:
    return content_hash(
        ["whoami", _WHOAMI_FORMAT, busybox, whoami_dockerfile("BASE"), WHOAMI_SERVER, WHOAMI_CGI]
    )


def whoami_version_image(version: str) -> str:
    return f"{repository(WHOAMI_IMAGE)}:{version}"


def whoami_version_key(whoami: str, version: str) -> str:
    return content_hash(["whoami-version", whoami, version, whoami_version_dockerfile("BASE", version)])


def whoami_version_dockerfile(base: str, version: str) -> str:
    return f"""\
FROM {base}
ENV WHOAMI_VERSION={version}
"""


def pause_key(busybox: str, compiled: bool) -> str:
    """The pause image is a static C program when the host can link one, else a busybox shell loop."""
    if compiled:
        return content_hash(["pause", _PAUSE_FORMAT, "gcc-static", PAUSE_C, PAUSE_DOCKERFILE])
    return content_hash(["pause", _PAUSE_FORMAT, "busybox", busybox, pause_fallback_dockerfile("BASE")])


def deps_key(debian: str, requirements: list[str], platforms: list[str]) -> str:
    return content_hash(["deps", debian, *platforms, "", *requirements])


def kubelite_key(debian: str, requirements: list[str], platforms: list[str], source: str) -> str:
    return content_hash(
        [
            "kubelite",
            _KUBELITE_FORMAT,
            debian,
            kubelite_dockerfile("BASE", "DEPS"),
            *platforms,
            *requirements,
            source,
        ]
    )


# --- host facts, parsed ---------------------------------------------------------------------


def debian_mirror(sources: Iterable[str], suite: str = DEBIAN_SUITE) -> str:
    """The host's Debian mirror for `suite`, from apt sources texts (deb822 or one-line).

    A host that is not Debian `suite` (say Ubuntu) has no matching entry and gets the default.
    """
    for text in sources:
        for uri in _deb822_uris(text, suite) + _one_line_uris(text, suite):
            return uri.rstrip("/")
    return DEFAULT_DEBIAN_MIRROR


def _deb822_uris(text: str, suite: str) -> list[str]:
    uris: list[str] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, sep, value = line.partition(":")
            if not sep:
                key = ""
                continue
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
            uris += [u for u in fields.get("uris", "").split() if u.startswith(("http://", "https://"))]
    return uris


def _one_line_uris(text: str, suite: str) -> list[str]:
    uris = []
    for line in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0])
        words = line.split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite and words[1].startswith("http"):
            uris.append(words[1])
    return uris


def runtime_requirements(pyproject: str) -> list[str]:
    """`[project].dependencies` of a pyproject.toml: what the kubelite image must install."""
    try:
        data = tomllib.loads(pyproject)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"pyproject.toml is not valid TOML: {e}") from e
    deps = data.get("project", {}).get("dependencies")
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ValueError("pyproject.toml has no [project].dependencies list of strings")
    return [d.strip() for d in deps]


def requirements_from_metadata(requires: Iterable[str]) -> list[str]:
    """Runtime requirements from installed metadata (Requires-Dist), dropping extras."""
    return [r.strip() for r in requires if "extra ==" not in r.replace('"', " ").replace("'", " ")]


def wheel_platforms(machine: str, glibc: tuple[int, int] = DEBIAN_GLIBC) -> list[str]:
    """Every manylinux platform tag the image's python3 accepts, newest first.

    pip (23.x) does not widen a `manylinux_2_X` given with --platform to older glibcs, so all
    of them are listed, down to the legacy aliases most wheels still carry.
    """
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())
    major, minor = glibc
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    return [*tags, f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]


def pip_download_args(requirements: list[str], dest: str, platforms: list[str]) -> list[str]:
    """Arguments after `python -m pip` that fetch cp311 wheels for the image, never sdists."""
    abi = "cp" + WHEEL_PYTHON_VERSION.replace(".", "")
    args = ["download", "--only-binary=:all:"]
    for tag in platforms:
        args += ["--platform", tag]
    args += ["--python-version", WHEEL_PYTHON_VERSION, "--implementation", "cp", "--abi", abi]
    return [*args, "--dest", dest, *requirements]


def is_shipped(relpath: str) -> bool:
    """Whether a file below a source package goes into the kubelite image (no caches, no VCS)."""
    parts = PurePosixPath(relpath).parts
    if any(p in _SKIPPED_DIRS or p.endswith(".egg-info") for p in parts[:-1]):
        return False
    return not parts[-1].endswith(_SKIPPED_SUFFIXES)


# --- image definitions ----------------------------------------------------------------------

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"

# Metadata comes before the COPY steps so a changed input reuses the cached metadata layers.
BUSYBOX_DOCKERFILE = """\
FROM scratch
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


def whoami_dockerfile(base: str) -> str:
    return f"""\
FROM {base}
ENV PORT={WHOAMI_PORT}
EXPOSE {WHOAMI_PORT}
ENTRYPOINT ["/bin/sh", "/usr/local/bin/whoami-server"]
COPY rootfs/ /
"""


# PID 1 of the container: busybox httpd does the HTTP (forking per connection, so concurrent
# requests are fine) and this shell turns SIGTERM/SIGINT into a prompt exit 0, which a bare
# httpd as PID 1 would not do.
WHOAMI_SERVER = """\
#!/bin/sh
# whoami: answer GET / (and any path ending in /) with this container's hostname.
httpd -f -p "${PORT:-8080}" -h /www &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; exit 0' TERM INT
wait "$server"
"""

# httpd runs /cgi-bin/index.cgi for every directory URL that has no index.html. A versioned
# whoami (kubelite/whoami:1.0) adds its version, so a rollout shows which release answered.
WHOAMI_CGI = """\
#!/bin/sh
printf 'Content-Type: text/plain\\r\\nCache-Control: no-store\\r\\n\\r\\n'
echo "$(hostname)${WHOAMI_VERSION:+ $WHOAMI_VERSION}"
"""

PAUSE_DOCKERFILE = """\
FROM scratch
ENTRYPOINT ["/pause"]
COPY pause /pause
"""


def pause_fallback_dockerfile(base: str) -> str:
    return f"""\
FROM {base}
ENTRYPOINT ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done"]
"""


PAUSE_C = r"""/* pause: hold a pod's namespaces open until told to stop.
 * PID 1 of the sandbox: sleeps until SIGTERM or SIGINT, then exits 0; reaps any child
 * that is reparented to it so no zombie piles up. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
    (void)sig;
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction stop = {0}, child = {0};
    stop.sa_handler = on_stop;
    sigaction(SIGTERM, &stop, 0);
    sigaction(SIGINT, &stop, 0);
    child.sa_handler = on_child;
    child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &child, 0);
    for (;;)
        pause();
}
"""


def kubelite_dockerfile(base: str, deps: str) -> str:
    """Wheels are installed in a throw-away stage so the final image holds no wheel files;
    the source comes last, so a source change rebuilds one layer. The stage is labelled with
    `deps` (its inputs' key) so that stale copies of it, kept as build cache, can be pruned."""
    return f"""\
FROM {base} AS deps
LABEL {DEPS_LABEL}={deps}
COPY wheels/ /wheels/
COPY requirements.txt /requirements.txt
RUN python3 -m pip install --no-cache-dir --no-index --find-links /wheels --break-system-packages \\
    --root-user-action=ignore --no-warn-script-location --root /deps -r /requirements.txt

FROM {base}
ENV PYTHONPATH=/opt/kubelite PYTHONUNBUFFERED=1
WORKDIR /opt/kubelite
CMD ["python3"]
COPY --from=deps /deps/ /
COPY src/ /opt/kubelite/
"""
