"""The pure parts of image building: content keys, the host's Debian mirror, the wheel list."""

from __future__ import annotations

import io
import tarfile

import pytest

from kubelite import imagedefs, images

HOST_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_content_hash_is_stable_and_separates_parts():
    assert imagedefs.content_hash(["ab", "c"]) == imagedefs.content_hash([b"ab", b"c"])
    assert imagedefs.content_hash(["ab", "c"]) != imagedefs.content_hash(["a", "bc"])
    assert imagedefs.content_hash(["a", "b"]) != imagedefs.content_hash(["b", "a"])
    assert len(imagedefs.content_hash([])) == 64


def test_hash_tag_and_repository():
    key = imagedefs.content_hash(["x"])
    assert imagedefs.hash_tag(key) == key[:16]
    assert imagedefs.repository(imagedefs.PAUSE_IMAGE) == "kubelite/pause"
    assert imagedefs.repository("localhost:5000/kubelite/pause:latest") == "localhost:5000/kubelite/pause"


def test_keys_change_with_their_inputs():
    debian = imagedefs.debian_key()
    busybox = imagedefs.busybox_key(debian)
    assert busybox != imagedefs.busybox_key(imagedefs.content_hash(["other debian"]))
    assert imagedefs.whoami_key(busybox) != imagedefs.whoami_key(debian)
    assert imagedefs.pause_key("", True) != imagedefs.pause_key(busybox, False)
    # the compiled pause does not depend on busybox
    assert imagedefs.pause_key("a", True) == imagedefs.pause_key("b", True)
    base = imagedefs.kubelite_key(debian, ["grpcio>=1"], ["manylinux_2_36_x86_64"], "src1")
    assert base != imagedefs.kubelite_key(debian, ["grpcio>=1"], ["manylinux_2_36_x86_64"], "src2")
    assert base != imagedefs.kubelite_key(debian, ["grpcio>=2"], ["manylinux_2_36_x86_64"], "src1")
    assert base == imagedefs.kubelite_key(debian, ["grpcio>=1"], ["manylinux_2_36_x86_64"], "src1")


def test_mirror_from_deb822_sources_picks_the_suite():
    assert imagedefs.debian_mirror([HOST_SOURCES]) == "http://deb.debian.org/debian"
    security_first = HOST_SOURCES.split("\n\n")[1] + "\n\n" + HOST_SOURCES.split("\n\n")[0]
    assert imagedefs.debian_mirror([security_first]) == "http://deb.debian.org/debian"


def test_mirror_from_one_line_sources_and_options():
    text = (
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64] http://mirror.example/debian/ bookworm main\n"
    )
    assert imagedefs.debian_mirror([text]) == "http://mirror.example/debian"


def test_mirror_skips_disabled_stanzas_and_continuation_lines():
    text = (
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb\nURIs: http://a.example/debian\n http://b.example/debian\nSuites: bookworm\n"
    )
    assert imagedefs.debian_mirror([text]) == "http://a.example/debian"


def test_mirror_defaults_when_host_is_not_bookworm():
    ubuntu = "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu\nSuites: noble noble-updates\n"
    assert imagedefs.debian_mirror([ubuntu]) == imagedefs.DEFAULT_DEBIAN_MIRROR
    assert imagedefs.debian_mirror([]) == imagedefs.DEFAULT_DEBIAN_MIRROR
    assert imagedefs.debian_mirror(["deb-src http://x.example/debian bookworm main"]) == (
        imagedefs.DEFAULT_DEBIAN_MIRROR
    )


def test_runtime_requirements_from_pyproject():
    text = """
[project]
name = "kubelite"
dependencies = [
    # a comment
    "grpcio>=1.85.1",
    "pyyaml>=6",
]
[project.optional-dependencies]
test = ["pytest"]
"""
    assert imagedefs.runtime_requirements(text) == ["grpcio>=1.85.1", "pyyaml>=6"]


@pytest.mark.parametrize(
    "text", ["[project]\nname='x'\n", "not toml = [", "[project]\ndependencies = 'grpcio'\n"]
)
def test_runtime_requirements_refuses_bad_pyproject(text):
    with pytest.raises(ValueError, match="pyproject"):
        imagedefs.runtime_requirements(text)


def test_checkout_requirements_are_the_pyproject_dependencies():
    reqs = images._runtime_requirements()
    names = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in reqs}
    assert {"grpcio", "protobuf", "aiohttp", "pyyaml", "docker"} <= names
    assert "pytest" not in names


def test_requirements_from_metadata_drop_extras():
    requires = ["grpcio>=1.85.1", 'pytest>=8; extra == "test"', "kubernetes>=37 ; extra == 'test'"]
    assert imagedefs.requirements_from_metadata(requires) == ["grpcio>=1.85.1"]


def test_wheel_platforms_cover_older_glibc_and_legacy_tags():
    tags = imagedefs.wheel_platforms("x86_64", (2, 36))
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags and "manylinux2014_x86_64" in tags and "manylinux1_x86_64" in tags
    assert imagedefs.wheel_platforms("arm64")[0] == "manylinux_2_36_aarch64"


def test_pip_download_args_only_binary_for_cp311():
    args = imagedefs.pip_download_args(["grpcio>=1"], "/d", ["manylinux_2_36_x86_64", "manylinux2014_x86_64"])
    assert args[:2] == ["download", "--only-binary=:all:"]
    assert args.count("--platform") == 2
    assert args[args.index("--python-version") + 1] == "3.11"
    assert args[args.index("--abi") + 1] == "cp311"
    assert args[-3:] == ["--dest", "/d", "grpcio>=1"]


@pytest.mark.parametrize(
    ("path", "shipped"),
    [
        ("kubelite/images.py", True),
        ("kubelite/pb/etcdserverpb/rpc_pb2.py", True),
        ("kubelite/__pycache__/images.cpython-311.pyc", False),
        ("apiserver/x.pyc", False),
        ("kubelite.egg-info/PKG-INFO", False),
        ("proxy/.pytest_cache/v/x", False),
        ("kubelet/.git/config", False),
        ("kubelet/.venv/bin/python", False),
    ],
)
def test_is_shipped(path, shipped):
    assert imagedefs.is_shipped(path) is shipped


def test_source_tree_holds_the_packages_and_no_caches():
    key, files = images._source_tree()
    assert "kubelite/images.py" in files and "etcdlite/__init__.py" in files
    assert all(imagedefs.is_shipped(rel) for rel in files)
    assert not any(rel.startswith((".venv", ".git", "tests/")) for rel in files)
    assert key == images._source_tree()[0]


def test_context_tar_is_deterministic_with_explicit_dirs():
    files = {"Dockerfile": (b"FROM scratch\n", 0o644), "rootfs/bin/busybox": (b"\x7fELF", 0o755)}
    first = images._context(files, {"rootfs/tmp": 0o1777})
    assert first == images._context(files, {"rootfs/tmp": 0o1777})
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["rootfs/tmp"].isdir() and members["rootfs/tmp"].mode == 0o1777
    assert members["rootfs/bin"].isdir()
    assert members["rootfs/bin/busybox"].mode == 0o755


def test_dockerfiles_name_their_base():
    assert imagedefs.whoami_dockerfile("kubelite/busybox:abc").startswith("FROM kubelite/busybox:abc\n")
    text = imagedefs.kubelite_dockerfile("kubelite/debian:abc", "d1")
    assert text.count("FROM kubelite/debian:abc") == 2
    assert "--no-index" in text and "--break-system-packages" in text
    assert imagedefs.PAUSE_DOCKERFILE.startswith("FROM scratch")
    assert imagedefs.BUSYBOX_DOCKERFILE.startswith("FROM scratch")


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBELITE_CACHE_DIR", str(tmp_path / "c"))
    assert images.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("KUBELITE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert images.cache_dir() == tmp_path / "x" / "kubelite"
