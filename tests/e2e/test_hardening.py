"""Hardening that only the real binary shows: the data directory is closed to other users."""

import json
import os
import stat
import urllib.request

from conftest import Cloud, free_port


def _modes(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    out["."] = stat.S_IMODE(os.lstat(root).st_mode)
    return out


def test_secrets_and_images_are_readable_by_the_cloud_user_only(tmp_path):
    data = tmp_path / "data"
    # A data directory left world-readable by an older version.
    (data / "images" / "images").mkdir(parents=True)
    leftover = data / "images" / "images" / "leftover"
    leftover.write_bytes(b"private image data")
    for p in (data, data / "images", data / "images" / "images"):
        os.chmod(p, 0o755)
    os.chmod(leftover, 0o644)

    # Started with the most permissive umask there is.
    c = Cloud(data_dir=data, port=free_port(), umask=0)
    c.start()
    try:
        # Something written after the start: a private image's data.
        token = c.admin_token
        req = urllib.request.Request(
            f"{c.url}/image/v2/images",
            data=json.dumps({"name": "secret", "disk_format": "raw", "container_format": "bare"}).encode(),
            method="POST",
            headers={"X-Auth-Token": token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:
            image = json.loads(r.read())
        req = urllib.request.Request(
            f"{c.url}/image/v2/images/{image['id']}/file",
            data=b"\0" * 4096,
            method="PUT",
            headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"},
        )
        with urllib.request.urlopen(req) as r:
            assert r.status == 204
        modes = _modes(data)
        for must in ("ferrostack.db", "ferrostack.db-wal", "openrc", "fernet-keys", f"images/images/{image['id']}"):
            assert must in modes, f"{must} missing: {sorted(modes)}"
        loose = {p: oct(m) for p, m in modes.items() if m & 0o077}
        assert not loose, f"readable by others: {loose}"
        assert modes["."] == 0o700 and modes["images/images/leftover"] == 0o600
        assert "modes fixed" in c.log_tail(200), c.log_tail(50)
    finally:
        c.stop()
