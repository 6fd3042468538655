"""Build every image a kubelite cluster and its tests need, locally, with no registry.

`build_images()` is what `kubelite images` runs. Each image is tagged `latest` and with the
first 16 hex digits of a content key over its inputs (also stored in the `io.kubelite.image.hash`
label); an image whose key-tag exists with that label is up to date, so a re-run inspects four
images and returns in well under a second. Only an image that must be built makes its parents.

    kubelite/debian:bookworm   debootstrap --variant=minbase (python3, pip, busybox-static),
                               tarred under the cache dir and `docker import`ed
    kubelite/busybox:latest    FROM scratch: Debian's static busybox, applets on PATH
    kubelite/whoami:latest     FROM busybox: httpd on :8080 answering GET / with the hostname
    kubelite/pause:latest      FROM scratch: a static pause compiled with the host's gcc
                               (a busybox shell loop when the host cannot link statically)
    kubelite/kubelite:latest   FROM debian: the runtime wheels (downloaded on the host for
                               cp311 manylinux) and this repository's packages in /opt/kubelite

It may touch: the Docker Engine (through the Docker SDK), the cache dir (`$KUBELITE_CACHE_DIR`,
else `$XDG_CACHE_HOME/kubelite`, else `~/.cache/kubelite`: rootfs tarball, .debs, wheels, a lock),
and it runs `debootstrap`, `pip download` and `gcc` as subprocesses. Debian's mirror is taken
from the host's apt sources (`$KUBELITE_DEBIAN_MIRROR` overrides).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from kubelite import imagedefs
from kubelite.imagedefs import (
    BUSYBOX_IMAGE,
    DEBIAN_IMAGE,
    HASH_LABEL,
    KUBELITE_IMAGE,
    PAUSE_IMAGE,
    WHOAMI_IMAGE,
)

__all__ = [
    "BUSYBOX_IMAGE",
    "DEBIAN_IMAGE",
    "IMAGES",
    "KUBELITE_IMAGE",
    "PAUSE_IMAGE",
    "WHOAMI_IMAGE",
    "ImageBuildError",
    "build_images",
    "cache_dir",
]

IMAGES = {
    "kubelite": KUBELITE_IMAGE,
    "pause": PAUSE_IMAGE,
    "busybox": BUSYBOX_IMAGE,
    "whoami": WHOAMI_IMAGE,
    **{f"whoami-{v}": imagedefs.whoami_version_image(v) for v in imagedefs.WHOAMI_VERSIONS},
}
"""Logical name -> reference of every image `build_images` guarantees."""

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKER_API_VERSION = "1.41"
_HASH_TAG = re.compile(r"[0-9a-f]{16}")
_CONTEXT_MTIME = 1_600_000_000
"""Fixed mtime in build contexts so unchanged inputs hit the builder's layer cache."""

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says what to do about it."""


def cache_dir() -> Path:
    if env := os.environ.get("KUBELITE_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubelite"


def build_images(force: bool = False, log: Log = print) -> dict[str, str]:
    """Make sure every image in IMAGES exists and is current; return IMAGES.

    `force` rebuilds every image without the builder's layer cache (the rootfs tarball and the
    downloaded wheels in the cache dir are still reused; delete the cache dir to refetch them).
    """
    started = time.monotonic()
    try:
        client = docker.DockerClient.from_env(version=DOCKER_API_VERSION, timeout=600)
        client.ping()
    except docker.errors.DockerException as e:
        raise ImageBuildError(f"cannot reach the Docker Engine: {e}") from e
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    try:
        with _exclusive(cache / "lock"):
            builder = _ImageBuilder(client.api, cache, force, log)
            builder.kubelite()
            builder.pause()
            builder.busybox()
            builder.whoami()
            for version in imagedefs.WHOAMI_VERSIONS:
                builder.whoami_version(version)
    except docker.errors.DockerException as e:
        raise ImageBuildError(f"the Docker Engine refused an image operation: {e}") from e
    finally:
        client.close()
    log(f"images: ready in {time.monotonic() - started:.1f}s ({', '.join(IMAGES.values())})")
    return dict(IMAGES)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One build at a time per cache dir: parallel `kubelite images` runs wait for each other."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class _ImageBuilder:
    """Ensures images in dependency order; each method returns the image's content key."""

    api: docker.APIClient
    cache: Path
    force: bool
    log: Log
    _done: dict[str, str] = field(default_factory=dict)

    # --- the images ------------------------------------------------------------------------

    def debian(self) -> str:
        key = imagedefs.debian_key()
        if self._current(DEBIAN_IMAGE, key):
            return key
        tarball = self._rootfs_tarball(key)
        repo = imagedefs.repository(DEBIAN_IMAGE)
        self.log(f"images: importing {tarball} as {DEBIAN_IMAGE}")
        changes = [
            f"LABEL {HASH_LABEL}={key}",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["/bin/bash"]',
        ]
        self.api.import_image_from_file(
            str(tarball), repository=repo, tag=imagedefs.hash_tag(key), changes=changes
        )
        self._tag_latest(DEBIAN_IMAGE, key)
        self._prune_stale(DEBIAN_IMAGE, key)
        return self._finish(DEBIAN_IMAGE, key)

    def busybox(self) -> str:
        key = self._busybox_key()
        if self._current(BUSYBOX_IMAGE, key):
            return key
        debian = self.debian()
        binary = self._file_from_image(_hash_ref(DEBIAN_IMAGE, debian), "/bin/busybox")
        files = {
            "Dockerfile": (imagedefs.BUSYBOX_DOCKERFILE.encode(), 0o644),
            "rootfs/bin/busybox": (binary, 0o755),
            "rootfs/etc/passwd": (imagedefs.PASSWD.encode(), 0o644),
            "rootfs/etc/group": (imagedefs.GROUP.encode(), 0o644),
        }
        dirs = {"rootfs/tmp": 0o1777, "rootfs/root": 0o700, "rootfs/usr/local/bin": 0o755}
        self._build(BUSYBOX_IMAGE, key, _context(files, dirs))
        return self._finish(BUSYBOX_IMAGE, key)

    def whoami(self) -> str:
        key = imagedefs.whoami_key(self._busybox_key())
        if self._current(WHOAMI_IMAGE, key):
            return key
        base = _hash_ref(BUSYBOX_IMAGE, self.busybox())
        files = {
            "Dockerfile": (imagedefs.whoami_dockerfile(base).encode(), 0o644),
            "rootfs/usr/local/bin/whoami-server": (imagedefs.WHOAMI_SERVER.encode(), 0o755),
            "rootfs/www/cgi-bin/index.cgi": (imagedefs.WHOAMI_CGI.encode(), 0o755),
        }
        self._build(WHOAMI_IMAGE, key, _context(files, {}))
        return self._finish(WHOAMI_IMAGE, key)

    def whoami_version(self, version: str) -> str:
        """kubelite/whoami:<version>: whoami that also answers with its version."""
        reference = imagedefs.whoami_version_image(version)
        whoami = self.whoami()
        key = imagedefs.whoami_version_key(whoami, version)
        if self._current(reference, key):
            return key
        dockerfile = imagedefs.whoami_version_dockerfile(_hash_ref(WHOAMI_IMAGE, whoami), version)
        self._build(reference, key, _context({"Dockerfile": (dockerfile.encode(), 0o644)}, {}))
        return self._finish(reference, key)

    def pause(self) -> str:
        compiled = _can_link_static()
        key = imagedefs.pause_key("" if compiled else self._busybox_key(), compiled)
        if self._current(PAUSE_IMAGE, key):
            return key
        if compiled:
            files = {
                "Dockerfile": (imagedefs.PAUSE_DOCKERFILE.encode(), 0o644),
                "pause": (self._compile_pause(), 0o755),
            }
        else:
            self.log("images: no static gcc on this host; the pause image is a busybox shell loop")
            base = _hash_ref(BUSYBOX_IMAGE, self.busybox())
            files = {"Dockerfile": (imagedefs.pause_fallback_dockerfile(base).encode(), 0o644)}
        self._build(PAUSE_IMAGE, key, _context(files, {}))
        return self._finish(PAUSE_IMAGE, key)

    def kubelite(self) -> str:
        requirements = _runtime_requirements()
        wheel_platforms = imagedefs.wheel_platforms(platform.machine())
        source_key, sources = _source_tree()
        key = imagedefs.kubelite_key(imagedefs.debian_key(), requirements, wheel_platforms, source_key)
        if self._current(KUBELITE_IMAGE, key):
            return key
        debian = self.debian()
        base = _hash_ref(DEBIAN_IMAGE, debian)
        deps = imagedefs.deps_key(debian, requirements, wheel_platforms)
        wheels = self._wheels(requirements, wheel_platforms)
        files = {
            "Dockerfile": (imagedefs.kubelite_dockerfile(base, deps).encode(), 0o644),
            "requirements.txt": ("".join(r + "\n" for r in requirements).encode(), 0o644),
        }
        for wheel in sorted(wheels.glob("*.whl")):
            files[f"wheels/{wheel.name}"] = (wheel.read_bytes(), 0o644)
        for rel, (data, mode) in sources.items():
            files[f"src/{rel}"] = (data, mode)
        self._build(KUBELITE_IMAGE, key, _context(files, {}))
        self._prune_stale_deps(deps, self._inspect(base)["Id"])
        return self._finish(KUBELITE_IMAGE, key)

    # --- keys of parents: pure, so checking a child never builds its parent -----------------

    def _busybox_key(self) -> str:
        return imagedefs.busybox_key(imagedefs.debian_key())

    # --- Docker -------------------------------------------------------------------------------

    def _inspect(self, image: str) -> dict[str, Any]:
        """`docker image inspect`; docker.errors.ImageNotFound when there is no such image."""
        # types-docker leaves APIClient.inspect_image unannotated
        info: dict[str, Any] = self.api.inspect_image(image)  # type: ignore[no-untyped-call]
        return info

    def _current(self, reference: str, key: str) -> bool:
        """Whether the image for `key` exists (then `latest` is pointed at it) and needs no build."""
        if reference in self._done:
            return self._done[reference] == key
        if self.force:
            return False
        try:
            info = self._inspect(_hash_ref(reference, key))
        except docker.errors.ImageNotFound:
            return False
        if ((info.get("Config") or {}).get("Labels") or {}).get(HASH_LABEL) != key:
            return False
        self._tag_latest(reference, key, info["Id"])
        self._done[reference] = key
        return True

    def _finish(self, reference: str, key: str) -> str:
        self._done[reference] = key
        return key

    def _tag_latest(self, reference: str, key: str, image_id: str | None = None) -> None:
        image_id = image_id or self._inspect(_hash_ref(reference, key))["Id"]
        repo, _, tag = reference.rpartition(":")
        try:
            current = self._inspect(reference)["Id"]
        except docker.errors.ImageNotFound:
            current = None
        if current != image_id:
            self.api.tag(image_id, repo, tag, force=True)
            if current is not None:
                self._remove_if_untagged(current)

    def _remove_if_untagged(self, image_id: str) -> None:
        """An image that lost its last tag (a forced rebuild under the same key) is garbage."""
        with contextlib.suppress(docker.errors.APIError):
            if not self._inspect(image_id).get("RepoTags"):
                self.api.remove_image(image_id)

    def _prune_stale_deps(self, deps: str, debian_id: str) -> None:
        """Dependency stages of other inputs, or built on a replaced Debian image, are build cache
        that no build will use again."""
        stale = self.api.images(filters={"dangling": True, "label": imagedefs.DEPS_LABEL})
        for image in stale:
            current = (image.get("Labels") or {}).get(imagedefs.DEPS_LABEL) == deps
            if not current or debian_id not in self._ancestors(image["Id"]):
                with contextlib.suppress(docker.errors.APIError):
                    self.api.remove_image(image["Id"])

    def _ancestors(self, image_id: str) -> list[str]:
        chain: list[str] = []
        with contextlib.suppress(docker.errors.APIError):
            while image_id and len(chain) < 100:
                image_id = self._inspect(image_id).get("Parent") or ""
                chain.append(image_id)
        return chain

    def _build(self, reference: str, key: str, context: bytes) -> None:
        started = time.monotonic()
        self.log(f"images: building {reference} ({imagedefs.hash_tag(key)})")
        stream = self.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=_hash_ref(reference, key),
            labels={HASH_LABEL: key},
            rm=True,
            forcerm=True,
            nocache=self.force,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise ImageBuildError(f"building {reference} failed: {detail.strip()}")
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    self.log(f"  {line.rstrip()}")
        self._tag_latest(reference, key)
        self._prune_stale(reference, key)
        self.log(f"images: built {reference} in {time.monotonic() - started:.1f}s")

    def _prune_stale(self, reference: str, key: str) -> None:
        """Drop older content-key tags of this repository, so source edits do not pile up images.

        An image that a container still uses stays (Docker refuses); it is pruned by a later build.
        """
        repo = imagedefs.repository(reference)
        # the current images of the repository's other references (whoami and its versions) stay
        keep = {imagedefs.hash_tag(key)} | {
            imagedefs.hash_tag(k) for ref, k in self._done.items() if imagedefs.repository(ref) == repo
        }
        for image in self.api.images(name=repo):
            for ref in image.get("RepoTags") or []:
                name, _, tag = ref.rpartition(":")
                if name == repo and tag not in keep and _HASH_TAG.fullmatch(tag):
                    with contextlib.suppress(docker.errors.APIError):
                        self.api.remove_image(ref)

    def _file_from_image(self, image: str, path: str) -> bytes:
        """One regular file out of an image, through a created (never started) container."""
        container = self.api.create_container(image, command=["true"])
        try:
            stream, _stat = self.api.get_archive(container["Id"], path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                for member in tar:
                    if member.isfile():
                        extracted = tar.extractfile(member)
                        if extracted is not None:
                            return extracted.read()
        finally:
            self.api.remove_container(container["Id"], force=True)
        raise ImageBuildError(f"{path} is not a regular file in {image}")

    # --- host-side inputs -----------------------------------------------------------------------

    def _rootfs_tarball(self, key: str) -> Path:
        """The Debian rootfs as a tarball, made once by debootstrap and kept in the cache dir."""
        tarball = self.cache / f"debian-{imagedefs.DEBIAN_SUITE}-{imagedefs.hash_tag(key)}.tar"
        if tarball.exists():
            return tarball
        debootstrap = shutil.which("debootstrap") or next(
            (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.access(p, os.X_OK)), None
        )
        if debootstrap is None:
            raise ImageBuildError(
                "debootstrap is needed to build the Debian base image: run `apt-get install debootstrap`"
            )
        if os.geteuid() != 0:
            raise ImageBuildError("building the Debian base image runs debootstrap, which must run as root")
        mirror = os.environ.get("KUBELITE_DEBIAN_MIRROR") or imagedefs.debian_mirror(_host_apt_sources())
        debs = self.cache / "debs"
        debs.mkdir(exist_ok=True)
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=self.cache))
        started = time.monotonic()
        try:
            cmd = [
                debootstrap,
                f"--variant={imagedefs.DEBIAN_VARIANT}",
                f"--include={','.join(imagedefs.DEBIAN_PACKAGES)}",
                f"--cache-dir={debs}",
                imagedefs.DEBIAN_SUITE,
                str(rootfs),
                mirror,
            ]
            self.log(f"images: {' '.join(cmd)}")
            _run(cmd, self.log, "debootstrap")
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "var/log", "tmp"):
                _empty_dir(rootfs / junk)
            partial = tarball.with_suffix(".tar.partial")
            with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
                for entry in sorted(rootfs.iterdir()):
                    tar.add(entry, arcname=entry.name)
            partial.rename(tarball)
        finally:
            _unmount_below(rootfs)
            shutil.rmtree(rootfs, ignore_errors=True)
        self.log(f"images: Debian rootfs ready in {time.monotonic() - started:.0f}s ({tarball})")
        return tarball

    def _wheels(self, requirements: list[str], platforms: list[str]) -> Path:
        """The runtime wheels for the image, downloaded once per requirement set into the cache."""
        key = imagedefs.content_hash(["wheels", *platforms, "", *requirements])
        wheels = self.cache / "wheels" / imagedefs.hash_tag(key)
        if (wheels / ".complete").exists():
            return wheels
        partial = wheels.with_name(wheels.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            *imagedefs.pip_download_args(requirements, str(partial), platforms),
        ]
        self.log(f"images: {' '.join(cmd)}")
        try:
            _run(cmd, self.log, "pip download")
        except ImageBuildError:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        (partial / ".complete").write_text("\n".join(requirements) + "\n")
        shutil.rmtree(wheels, ignore_errors=True)
        partial.rename(wheels)
        return wheels

    def _compile_pause(self) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            source, binary = Path(tmp, "pause.c"), Path(tmp, "pause")
            source.write_text(imagedefs.PAUSE_C)
            cmd = ["gcc", "-static", "-Os", "-s", "-Wall", "-o", str(binary), str(source)]
            _run(cmd, self.log, "gcc")
            return binary.read_bytes()


def _hash_ref(reference: str, key: str) -> str:
    return f"{imagedefs.repository(reference)}:{imagedefs.hash_tag(key)}"


def _context(files: dict[str, tuple[bytes, int]], dirs: dict[str, int]) -> bytes:
    """A build context tar with fixed owners and mtimes, directories made explicit."""
    out = io.BytesIO()
    all_dirs = dict(dirs)
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            all_dirs.setdefault("/".join(parts[:i]), 0o755)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(all_dirs):
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, all_dirs[path], _CONTEXT_MTIME
            tar.addfile(info)
        for path in sorted(files):
            data, mode = files[path]
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, _CONTEXT_MTIME
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _source_tree() -> tuple[str, dict[str, tuple[bytes, int]]]:
    """This repository's packages as shipped in the image, and their content key."""
    files: dict[str, tuple[bytes, int]] = {}
    for package in imagedefs.SOURCE_PACKAGES:
        top = REPO_ROOT / package
        if not top.is_dir():
            raise ImageBuildError(f"package directory {top} is missing")
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if imagedefs.is_shipped(f"{d}/x"))
            for name in sorted(filenames):
                path = Path(dirpath, name)
                rel = path.relative_to(REPO_ROOT).as_posix()
                if not imagedefs.is_shipped(rel) or not path.is_file():
                    continue
                mode = 0o755 if os.access(path, os.X_OK) else 0o644
                files[rel] = (path.read_bytes(), mode)
    parts: list[bytes | str] = []
    for rel in sorted(files):
        data, mode = files[rel]
        parts += [rel, oct(mode), data]
    return imagedefs.content_hash(parts), files


def _runtime_requirements() -> list[str]:
    """[project].dependencies of the checkout, else of the installed distribution."""
    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.is_file():
        try:
            return imagedefs.runtime_requirements(pyproject.read_text())
        except ValueError as e:
            raise ImageBuildError(f"{pyproject}: {e}") from e
    try:
        return imagedefs.requirements_from_metadata(importlib.metadata.requires("kubelite") or [])
    except importlib.metadata.PackageNotFoundError as e:
        raise ImageBuildError(
            "no pyproject.toml next to the kubelite package and kubelite is not installed"
        ) from e


def _host_apt_sources() -> list[str]:
    texts = []
    paths = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    paths += [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in paths:
        with contextlib.suppress(OSError):
            texts.append(path.read_text())
    return texts


def _can_link_static() -> bool:
    """gcc present with a static libc (libc6-dev), so `gcc -static` can make the pause binary."""
    if shutil.which("gcc") is None:
        return False
    try:
        out = subprocess.run(["gcc", "-print-file-name=libc.a"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    libc = out.stdout.strip()
    return out.returncode == 0 and os.path.isabs(libc) and os.path.isfile(libc)


def _run(cmd: list[str], log: Log, what: str) -> None:
    """Run a build tool, passing its output on line by line; its failure is an ImageBuildError."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as e:
        raise ImageBuildError(f"{what} could not start: {e}") from e
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            log(f"  {line}")
            tail = [*tail[-19:], line]
    if proc.wait() != 0:
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def _empty_dir(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _unmount_below(root: Path) -> None:
    """Undo mounts a failed debootstrap left inside the rootfs (proc, sys) before deleting it."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(root.resolve()) + "/"
    targets = [m.split()[1] for m in mounts if len(m.split()) > 1 and m.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
