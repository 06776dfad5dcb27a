"""The image service (Glance v2 under /image), driven by the real ``openstack`` client.

Raw HTTP (``_api``, ``_http_image``) is used for set-up that is not under test (images to list
or change), for quick side checks next to a client command, and where the client cannot show
what the server did: it refuses ``--disk-format nope`` itself, deletes an image whose upload
failed, ignores the status of an import and of a download, and turns a 404 on ``image show``
into "No Image found".
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import cli_fails, in_parallel, os_cli, unique, user_env

TESTVM_NAMES = ("testvm", "testvm-kernel", "testvm-ramdisk")


# --------------------------------------------------------------------------------------------
# Helpers


def _api(cloud, method, path, token, body=None, data=None, headers=None):
    """``method`` ``/image/v2/<path>``; returns (status, parsed body or text)."""
    url = f"{cloud.url}/image/v2/{path.lstrip('/')}"
    hdrs = {"X-Auth-Token": token, "Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    elif data is not None:
        hdrs["Content-Type"] = "application/octet-stream"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def _http_image(cloud, token, data: bytes | None = None, **attrs) -> dict:
    """Creates an image over HTTP (and uploads ``data``); returns it as shown afterwards."""
    attrs.setdefault("disk_format", "raw")
    attrs.setdefault("container_format", "bare")
    status, img = _api(cloud, "POST", "images", token, body=attrs)
    assert status == 201, img
    if data is not None:
        status, body = _api(cloud, "PUT", f"images/{img['id']}/file", token, data=data)
        assert status == 204, body
        status, img = _api(cloud, "GET", f"images/{img['id']}", token)
        assert status == 200 and img["status"] == "active", img
    return img


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _not_found(cloud, member, image_id):
    """``image show`` fails for ``member`` (the client says "No Image found": it falls back to a
    search by name after the 404, so the status is checked over HTTP too)."""
    res = cli_fails(member.env, "image", "show", image_id)
    assert "No Image found" in res.stderr, res.stderr
    status, body = _api(cloud, "GET", f"images/{image_id}", member.token)
    assert status == 404, body


def _ids(listing) -> list:
    return [row["ID"] for row in listing]


class Member:
    """A user with the member role on a project of its own, and its CLI environment."""

    def __init__(self, cloud, admin_env):
        self.user, self.project = cloud.user_with_role("member")
        self.env = user_env(admin_env, self.user["name"], self.user["password"], project=self.project["name"])
        self.token, _ = cloud.password_token(self.user["name"], self.user["password"], project=self.project["id"])

    @property
    def project_id(self) -> str:
        return self.project["id"]


@pytest.fixture(scope="module")
def members(cloud, admin_env):
    """Three members of three projects: a, b, c."""
    return Member(cloud, admin_env), Member(cloud, admin_env), Member(cloud, admin_env)


@pytest.fixture
def payload(tmp_path) -> tuple[Path, bytes]:
    """A file of random bytes (recognised as raw)."""
    data = os.urandom(300_000)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    return path, data


def _store_dir(cloud) -> Path:
    return cloud.data_dir / "images" / "images"


# --------------------------------------------------------------------------------------------
# Create, show, save


def test_create_show_save_roundtrip(cloud, admin_env, members, payload, tmp_path):
    a = members[0]
    src, data = payload
    pub, priv = unique("img-pub"), unique("img-priv")
    created_pub, created_priv = in_parallel(
        lambda: os_cli(
            admin_env, "image", "create", "--file", src, "--disk-format", "raw", "--container-format", "bare",
            "--public", pub,
        ),
        lambda: os_cli(
            a.env, "image", "create", "--file", src, "--disk-format", "raw", "--container-format", "bare",
            "--private", priv,
        ),
    )
    for img, vis, owner in ((created_pub, "public", cloud.admin_project_id), (created_priv, "private", a.project_id)):
        assert img["status"] == "active", img
        assert img["visibility"] == vis
        assert img["owner"] == owner
        assert img["size"] == len(data)
        assert img["disk_format"] == "raw" and img["container_format"] == "bare"

    out_pub, out_priv = tmp_path / "out-pub.bin", tmp_path / "out-priv.bin"
    shown_pub, shown_priv, _, _ = in_parallel(
        lambda: os_cli(admin_env, "image", "show", created_pub["id"]),
        # The member finds its own image by name.
        lambda: os_cli(a.env, "image", "show", priv),
        lambda: os_cli(admin_env, "image", "save", "--file", out_pub, created_pub["id"]),
        lambda: os_cli(a.env, "image", "save", "--file", out_priv, priv),
    )
    assert shown_priv["id"] == created_priv["id"]
    for shown in (shown_pub, shown_priv):
        assert shown["checksum"] == _md5(data), "checksum is the md5 of the uploaded file"
        assert shown["size"] == len(data)
        assert shown["virtual_size"] == len(data), "a raw image's virtual size is its size"
        props = shown.get("properties") or {}
        assert props.get("os_hash_algo") == "sha512"
        assert props.get("os_hash_value") == hashlib.sha512(data).hexdigest()
    assert out_pub.read_bytes() == data
    assert out_priv.read_bytes() == data
    # What the file store holds is exactly the upload.
    assert (_store_dir(cloud) / created_pub["id"]).read_bytes() == data


def test_no_testvm_without_testvm_dir(cloud, admin_env, members):
    admin_list, member_list = in_parallel(
        lambda: os_cli(admin_env, "image", "list", "--limit", "1000"),
        lambda: os_cli(members[0].env, "image", "list", "--public"),
    )
    for listing in (admin_list, member_list):
        names = {row["Name"] for row in listing}
        assert not names & set(TESTVM_NAMES), f"testvm registered without --testvm-dir: {names}"


# --------------------------------------------------------------------------------------------
# Listing


def test_list_filters(cloud, admin_env, members):
    """`image list` filters as a member sees them. The images are made over HTTP (set-up)."""
    b = members[1]
    a = Member(cloud, admin_env)  # a project of its own: its lists hold only what is made here
    tag, prop = unique("tag"), unique("val")
    # Created in this order; names chosen so that name order differs from creation order.
    p1 = _http_image(cloud, a.token, b"one" * 100, name=unique("l-b"), visibility="private", tags=[tag])
    p2 = _http_image(cloud, a.token, b"two" * 100, name=unique("l-c"), visibility="private", flavor=prop)
    p3 = _http_image(cloud, a.token, b"three" * 100, name=unique("l-a"), visibility="private", tags=[tag], flavor=prop)
    queued = _http_image(cloud, a.token, None, name=unique("l-q"), visibility="private")
    shared = _http_image(cloud, a.token, b"four" * 100, name=unique("l-s"), visibility="shared")
    pub = _http_image(cloud, cloud.admin_token, b"five" * 100, name=unique("l-p"), visibility="public")
    other = _http_image(cloud, b.token, b"six" * 100, name=unique("l-o"), visibility="private")
    mine = {p1["id"], p2["id"], p3["id"], queued["id"], shared["id"]}

    (everything, active, public, private, shared_l, by_prop, by_tag, by_name, limited) = in_parallel(
        lambda: os_cli(a.env, "image", "list"),
        lambda: os_cli(a.env, "image", "list", "--status", "active"),
        lambda: os_cli(a.env, "image", "list", "--public"),
        lambda: os_cli(a.env, "image", "list", "--private"),
        lambda: os_cli(a.env, "image", "list", "--shared"),
        lambda: os_cli(a.env, "image", "list", "--property", f"flavor={prop}"),
        lambda: os_cli(a.env, "image", "list", "--tag", tag),
        lambda: os_cli(a.env, "image", "list", "--private", "--sort", "name:asc"),
        # Newest first is the API's order: a page of 2 is the two newest private images.
        lambda: os_cli(a.env, "image", "list", "--private", "--limit", "2"),
    )
    ids = set(_ids(everything))
    assert mine <= ids and pub["id"] in ids
    assert other["id"] not in ids, "another project's private image is listed"

    assert set(_ids(active)) >= mine - {queued["id"]}
    assert queued["id"] not in _ids(active)
    assert all(row["Status"] == "active" for row in active)

    assert pub["id"] in _ids(public)
    assert not mine & set(_ids(public))

    assert set(_ids(private)) == {p1["id"], p2["id"], p3["id"], queued["id"]}

    assert shared["id"] in _ids(shared_l)
    assert not {p1["id"], p2["id"], p3["id"], pub["id"]} & set(_ids(shared_l))

    assert sorted(_ids(by_prop)) == sorted([p2["id"], p3["id"]])
    assert sorted(_ids(by_tag)) == sorted([p1["id"], p3["id"]])

    names = [row["Name"] for row in by_name]
    assert names == sorted(names) and len(names) == 4
    assert names[0] == p3["name"], names

    assert sorted(_ids(limited)) == sorted([queued["id"], p3["id"]]), limited


# --------------------------------------------------------------------------------------------
# Changing images


def test_set_and_unset_property_and_tag(cloud, members):
    a = members[0]
    img = _http_image(cloud, a.token, b"x" * 1000, name=unique("set"), visibility="private")
    os_cli(a.env, "image", "set", "--property", "os_distro=ubuntu", "--tag", "lts", img["id"])
    shown, tagged = in_parallel(
        lambda: os_cli(a.env, "image", "show", img["id"]),
        lambda: os_cli(a.env, "image", "list", "--tag", "lts", "--property", "os_distro=ubuntu"),
    )
    assert (shown.get("properties") or {}).get("os_distro") == "ubuntu", shown
    assert shown["tags"] == ["lts"]
    assert img["id"] in _ids(tagged)

    os_cli(a.env, "image", "unset", "--property", "os_distro", "--tag", "lts", img["id"])
    shown, tagged = in_parallel(
        lambda: os_cli(a.env, "image", "show", img["id"]),
        lambda: os_cli(a.env, "image", "list", "--tag", "lts"),
    )
    assert "os_distro" not in (shown.get("properties") or {}), shown
    assert shown["tags"] == []
    assert img["id"] not in _ids(tagged)


def test_protected_image_cannot_be_deleted_and_delete_removes_data(cloud, members, payload):
    a = members[0]
    _, data = payload
    img = _http_image(cloud, a.token, data, name=unique("prot"), visibility="private")
    stored = _store_dir(cloud) / img["id"]
    assert stored.read_bytes() == data

    os_cli(a.env, "image", "set", "--protected", img["id"])
    res = cli_fails(a.env, "image", "delete", img["id"])
    assert "1 of 1" in res.stderr or "protected" in res.stderr.lower(), res.stderr
    status, shown = _api(cloud, "GET", f"images/{img['id']}", a.token)
    assert status == 200 and shown["protected"] is True and shown["status"] == "active", shown
    assert stored.exists(), "a refused delete removed the data"

    os_cli(a.env, "image", "set", "--unprotected", img["id"])
    os_cli(a.env, "image", "delete", img["id"])
    assert _api(cloud, "GET", f"images/{img['id']}", a.token)[0] == 404
    assert not stored.exists(), f"image data left behind in {stored}"
    leftovers = [p.name for p in _store_dir(cloud).iterdir() if p.name.startswith(img["id"])]
    assert leftovers == []


def test_deactivate_blocks_download_for_non_admins(cloud, admin_env, members, payload, tmp_path):
    a = members[0]
    _, data = payload
    img = _http_image(cloud, a.token, data, name=unique("deact"), visibility="private")
    os_cli(a.env, "image", "set", "--deactivate", img["id"])
    out_member, out_admin = tmp_path / "m.bin", tmp_path / "a.bin"
    shown, _, _ = in_parallel(
        lambda: os_cli(a.env, "image", "show", img["id"]),
        lambda: cli_fails(a.env, "image", "save", "--file", out_member, img["id"]),
        # An admin may still download a deactivated image (Glance's rule).
        lambda: os_cli(admin_env, "image", "save", "--file", out_admin, img["id"]),
    )
    assert shown["status"] == "deactivated"
    # openstacksdk does not check the status of the download: it writes the 403 body to the
    # file and then fails on the checksum. The refusal itself is checked over HTTP.
    assert not out_member.exists() or out_member.read_bytes() != data
    status, body = _api(cloud, "GET", f"images/{img['id']}/file", a.token)
    assert status == 403 and "deactivated" in json.dumps(body), body
    assert out_admin.read_bytes() == data

    os_cli(a.env, "image", "set", "--activate", img["id"])
    out_member.unlink(missing_ok=True)
    shown, _ = in_parallel(
        lambda: os_cli(a.env, "image", "show", img["id"]),
        lambda: os_cli(a.env, "image", "save", "--file", out_member, img["id"]),
    )
    assert shown["status"] == "active"
    assert out_member.read_bytes() == data


# --------------------------------------------------------------------------------------------
# Sharing and visibility


def test_sharing_with_another_project(cloud, members, payload):
    a, b, c = members
    src, _ = payload
    img = os_cli(
        a.env, "image", "create", "--file", src, "--disk-format", "raw", "--container-format", "bare",
        "--shared", unique("shared"),
    )
    assert img["visibility"] == "shared"
    iid = img["id"]

    # Before any membership, b does not see it at all.
    assert _api(cloud, "GET", f"images/{iid}", b.token)[0] == 404
    os_cli(a.env, "image", "add", "project", iid, b.project_id)

    # Pending: not in b's lists yet, though b may look at it by id (as in Glance).
    b_shared, b_show, _ = in_parallel(
        lambda: os_cli(b.env, "image", "list", "--shared"),
        lambda: os_cli(b.env, "image", "show", iid),
        lambda: _not_found(cloud, c, iid),
    )
    assert iid not in _ids(b_shared)
    assert b_show["id"] == iid
    _, body = _api(cloud, "GET", "images?limit=1000", b.token)
    assert iid not in [i["id"] for i in body["images"]]

    os_cli(b.env, "image", "set", "--accept", iid)
    b_shared, owner_view = in_parallel(
        lambda: os_cli(b.env, "image", "list", "--shared"),
        lambda: os_cli(a.env, "image", "member", "list", iid),
    )
    assert iid in _ids(b_shared)
    assert [(m["Member ID"], m["Status"]) for m in owner_view] == [(b.project_id, "accepted")], owner_view
    # Accepted images are in b's default list too; c (no member) sees nothing; b sees only its
    # own membership.
    _, body = _api(cloud, "GET", "images?limit=1000", b.token)
    assert iid in [i["id"] for i in body["images"]]
    _, body = _api(cloud, "GET", "images?visibility=shared", c.token)
    assert iid not in [i["id"] for i in body["images"]]
    _, body = _api(cloud, "GET", f"images/{iid}/members", b.token)
    assert [m["member_id"] for m in body["members"]] == [b.project_id], body

    os_cli(a.env, "image", "remove", "project", iid, b.project_id)
    b_list, _, owner_view = in_parallel(
        lambda: os_cli(b.env, "image", "list"),
        lambda: _not_found(cloud, b, iid),
        lambda: os_cli(a.env, "image", "member", "list", iid),
    )
    assert iid not in _ids(b_list)
    assert owner_view == []


def test_member_cannot_publicize_and_private_images_stay_private(cloud, members, payload):
    a, b, _ = members
    src, _ = payload
    name = unique("pub-try")
    priv = _http_image(cloud, a.token, b"p" * 512, name=unique("priv"), visibility="private")
    created, changed, hidden = in_parallel(
        lambda: cli_fails(
            a.env, "image", "create", "--file", src, "--disk-format", "raw", "--container-format", "bare",
            "--public", name, status=403,
        ),
        lambda: cli_fails(a.env, "image", "set", "--public", priv["id"], status=403),
        lambda: _not_found(cloud, b, priv["id"]),
    )
    # Nothing public came of it.
    status, body = _api(cloud, "GET", f"images?name={name}", cloud.admin_token)
    assert status == 200 and body["images"] == []
    status, body = _api(cloud, "GET", f"images/{priv['id']}", a.token)
    assert body["visibility"] == "private"
    # b cannot touch it either.
    assert _api(cloud, "GET", f"images/{priv['id']}/file", b.token)[0] == 404
    assert _api(cloud, "DELETE", f"images/{priv['id']}", b.token)[0] == 404


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_disk_format(cloud, members):
    a = members[0]
    name = unique("nope")
    client_side, server_side = in_parallel(
        # The client knows Glance's formats and refuses before any request ...
        lambda: os_cli(
            a.env, "image", "create", "--disk-format", "nope", "--container-format", "bare", name, check=False
        ),
        # ... so the value is smuggled in as a property, which the client sends as an attribute.
        lambda: cli_fails(
            a.env, "image", "create", "--container-format", "bare", "--property", "disk_format=nope", name,
            status=400,
        ),
    )
    assert client_side.returncode != 0 and "nope" in client_side.stderr
    assert "disk_format" in server_side.stderr
    status, body = _api(cloud, "POST", "images", a.token, body={"name": name, "disk_format": "nope"})
    assert status == 400, body
    status, body = _api(cloud, "GET", f"images?name={name}", a.token)
    assert body["images"] == []


def test_content_must_match_disk_format(cloud, members, tmp_path):
    a = members[0]
    junk = os.urandom(200_000)
    f = tmp_path / "junk.qcow2"
    f.write_bytes(junk)
    backing = tmp_path / "backed.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/hosts", "-F", "raw", str(backing)], check=True
    )
    n1, n2 = unique("mismatch"), unique("backing")
    mismatch, unsafe = in_parallel(
        lambda: cli_fails(
            a.env, "image", "create", "--file", f, "--disk-format", "qcow2", "--container-format", "bare", n1,
            status=400,
        ),
        lambda: cli_fails(
            a.env, "image", "create", "--file", backing, "--disk-format", "qcow2", "--container-format", "bare",
            n2, status=400,
        ),
    )
    assert "does not match" in mismatch.stderr, mismatch.stderr
    assert "unsafe" in unsafe.stderr.lower() and "backing" in unsafe.stderr.lower(), unsafe.stderr
    # The client deletes an image whose upload failed; whatever is left is not active.
    for n in (n1, n2):
        _, body = _api(cloud, "GET", f"images?name={n}", a.token)
        assert [i["status"] for i in body["images"] if i["status"] == "active"] == [], body

    # The image itself stays queued (and can take good data later): upload over HTTP, since
    # the client would delete it; then the import path through the client.
    img = _http_image(cloud, a.token, None, name=unique("queued"), disk_format="qcow2", visibility="private")
    status, body = _api(cloud, "PUT", f"images/{img['id']}/file", a.token, data=junk)
    assert status == 400 and "does not match" in json.dumps(body), body
    status, body = _api(cloud, "PUT", f"images/{img['id']}/file", a.token, data=backing.read_bytes())
    assert status == 400 and "backing" in json.dumps(body), body
    os_cli(a.env, "image", "stage", "--file", f, img["id"])
    # `image import` ignores the status of the import call (Glance imports asynchronously).
    os_cli(a.env, "image", "import", "--method", "glance-direct", img["id"], check=False, json_output=False)
    shown = os_cli(a.env, "image", "show", img["id"])
    assert shown["status"] == "queued", shown
    assert shown.get("size") is None and shown.get("checksum") is None, shown
    assert not (_store_dir(cloud) / img["id"]).exists()
    assert list((cloud.data_dir / "images" / "staging").iterdir()) == [], "refused data left in staging"

    good = tmp_path / "good.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(good), "16M"], check=True)
    status, body = _api(cloud, "PUT", f"images/{img['id']}/file", a.token, data=good.read_bytes())
    assert status == 204, body
    _, body = _api(cloud, "GET", f"images/{img['id']}", a.token)
    assert body["status"] == "active" and body["virtual_size"] == 16 * 1024 * 1024, body


# --------------------------------------------------------------------------------------------
# The built-in testvm images


# Where a prebuilt testvm is (scripts/test sets FERROSTACK_TESTVM_DIR; conftest does not pass
# it on to the clouds it starts).
TESTVM_DIR = Path(os.environ.get("FERROSTACK_TESTVM_DIR") or "/tmp/tvA")


def _restart(c, binary: str | None = None):
    """Stops and starts ``c`` again (with ``binary`` as $FERROSTACK_BIN, when given)."""
    c.stop()
    with pytest.MonkeyPatch.context() as mp:
        if binary:
            mp.setenv("FERROSTACK_BIN", binary)
        c.start()


@pytest.fixture(scope="module")
def testvm_cloud(cloud_factory, tmp_path_factory):
    """A second cloud started with ``--testvm-dir``; returns (cloud, the binary to restart it
    with). The fixtures start ``$FERROSTACK_BIN all-in-one --data-dir ... --listen ...``: a
    wrapper adds the flag under test."""
    if not all((TESTVM_DIR / f).is_file() for f in ("testvm-kernel", "testvm-ramdisk", "testvm.qcow2")):
        pytest.skip(f"no prebuilt testvm in {TESTVM_DIR}")
    wrapper = tmp_path_factory.mktemp("testvm-bin") / "ferrostack-testvm"
    wrapper.write_text(f'#!/bin/sh\nexec "{os.environ["FERROSTACK_BIN"]}" "$@" --testvm-dir "{TESTVM_DIR}"\n')
    wrapper.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERROSTACK_BIN", str(wrapper))
        tv = cloud_factory(unique("testvm"))
    return tv, str(wrapper)


def _testvm_images(tv) -> dict:
    """The testvm images in ``image list --public --long``, by name; exactly one of each."""
    listing = os_cli(tv.env, "image", "list", "--public", "--long")
    by_name = {}
    for row in listing:
        by_name.setdefault(row["Name"], []).append(row)
    for n in TESTVM_NAMES:
        assert len(by_name.get(n, [])) == 1, f"{n}: {by_name.get(n)}"
    return {n: by_name[n][0] for n in TESTVM_NAMES}


def test_testvm_dir_registers_testvm_once(testvm_cloud):
    tv, binary = testvm_cloud
    first = _testvm_images(tv)
    vm, kernel, ramdisk = in_parallel(
        *(lambda n=n: os_cli(tv.env, "image", "show", first[n]["ID"]) for n in TESTVM_NAMES)
    )
    assert (vm["disk_format"], kernel["disk_format"], ramdisk["disk_format"]) == ("qcow2", "aki", "ari")
    for img, f in ((vm, "testvm.qcow2"), (kernel, "testvm-kernel"), (ramdisk, "testvm-ramdisk")):
        assert img["status"] == "active" and img["visibility"] == "public", img
        assert img["checksum"] == _md5((TESTVM_DIR / f).read_bytes()), f
    props = vm.get("properties") or {}
    assert props.get("kernel_id") == kernel["id"], props
    assert props.get("ramdisk_id") == ramdisk["id"], props
    # The qcow2 header's size field (big-endian, offset 24).
    header = (TESTVM_DIR / "testvm.qcow2").read_bytes()[:32]
    assert vm["virtual_size"] == int.from_bytes(header[24:32], "big")

    _restart(tv, binary)
    again = _testvm_images(tv)
    assert {n: r["ID"] for n, r in again.items()} == {n: r["ID"] for n, r in first.items()}
    _, body = _api(tv, "GET", "images?limit=1000", tv.admin_token)
    assert len(body["images"]) == 3, [(i["name"], i["status"]) for i in body["images"]]


def test_deactivated_testvm_is_not_registered_again(testvm_cloud):
    """A deactivated testvm is still registered: a restart must not add another one."""
    tv, binary = testvm_cloud
    before = _testvm_images(tv)
    vm_id = before["testvm"]["ID"]
    status, body = _api(tv, "POST", f"images/{vm_id}/actions/deactivate", tv.admin_token)
    assert status == 204, body
    _restart(tv, binary)
    after = _testvm_images(tv)
    assert {n: r["ID"] for n, r in after.items()} == {n: r["ID"] for n, r in before.items()}
    assert after["testvm"]["Status"] == "deactivated"


def test_staged_image_is_not_stuck_after_restart(cloud_factory, tmp_path):
    """Staged data does not survive a restart (the staging area is cleaned at start), so an
    image in `uploading` must go back to `queued` and take a new upload."""
    c = cloud_factory(unique("restage"))
    data = os.urandom(50_000)
    f = tmp_path / "staged.raw"
    f.write_bytes(data)
    img = _http_image(c, c.admin_token, None, name=unique("staged"), visibility="private")
    os_cli(c.env, "image", "stage", "--file", f, img["id"])
    _, body = _api(c, "GET", f"images/{img['id']}", c.admin_token)
    assert body["status"] == "uploading", body

    _restart(c)
    shown = os_cli(c.env, "image", "show", img["id"])
    assert shown["status"] == "queued", f"image stuck in {shown['status']} after a restart"
    # ... and it can be uploaded again.
    status, body = _api(c, "PUT", f"images/{img['id']}/stage", c.admin_token, data=data)
    assert status == 204, body
    status, body = _api(
        c, "POST", f"images/{img['id']}/import", c.admin_token, body={"method": {"name": "glance-direct"}}
    )
    assert status == 202, body
    _, body = _api(c, "GET", f"images/{img['id']}", c.admin_token)
    assert body["status"] == "active" and body["checksum"] == _md5(data), body
