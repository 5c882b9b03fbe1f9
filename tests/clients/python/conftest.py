"""Runs the real `host-shim` binary (built by `make`) for the Python client
tests: a temporary data directory, a free loopback port, stopped at the end."""

import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
BINARY = pathlib.Path(os.environ.get("SWITCHBOARD_SHIM", ROOT / "target/debug/host-shim"))
LISTENING = re.compile(r"listening on (http://[0-9.]+:(\d+))")


class Shim:
    """A running shim: its base URL and port, the admin's token, helpers."""

    def __init__(self, process, url, port, token, team_name):
        self.process = process
        self.url = url
        self.port = port
        self.admin_token = token
        self.team_name = team_name
        self.log = []

    def api(self, method, path, body=None, token=None):
        """A REST call; returns (status, parsed JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", "Bearer " + (token or self.admin_token))
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def ok(self, method, path, body=None, token=None):
        status, value = self.api(method, path, body, token)
        assert 200 <= status < 300, (method, path, status, value)
        return value

    def team(self):
        return self.ok("GET", "/api/v4/teams/name/" + self.team_name)

    def channel(self, name="town-square"):
        return self.ok(
            "GET", "/api/v4/teams/name/%s/channels/name/%s" % (self.team_name, name)
        )

    def user(self, username):
        """Creates a team member in town-square; returns (user, token)."""
        user = self.ok(
            "POST",
            "/api/v4/users",
            {"username": username, "email": username + "@example.com", "password": "secret-1"},
        )
        team = self.team()
        self.ok("POST", "/api/v4/teams/%s/members" % team["id"], {"user_id": user["id"]})
        self.ok(
            "POST",
            "/api/v4/channels/%s/members" % self.channel()["id"],
            {"user_id": user["id"]},
        )
        token = self.ok("POST", "/api/v4/users/%s/tokens" % user["id"], {"description": "t"})
        return user, token["token"]

    def posts(self, channel_id):
        """The channel's posts, newest first."""
        listing = self.ok("GET", "/api/v4/channels/%s/posts?per_page=200" % channel_id)
        return [listing["posts"][i] for i in listing["order"]]

    def wait_for_post(self, channel_id, predicate, seconds=20):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for post in self.posts(channel_id):
                if predicate(post):
                    return post
            time.sleep(0.1)
        raise AssertionError("no such post in %s" % channel_id)


def _drain(process, shim_log, found):
    for line in process.stdout:
        shim_log.append(line)
        match = LISTENING.search(line)
        if match and not found:
            found.append(match)


@pytest.fixture(scope="session")
def shim():
    assert BINARY.exists(), "build the shim first (`make`): %s" % BINARY
    data = tempfile.mkdtemp(prefix="switchboard-clients-")
    config = {
        "ServiceSettings": {
            "ListenAddress": "127.0.0.1:0",
            # The client apps the tests run listen on loopback too.
            "AllowedUntrustedInternalConnections": "127.0.0.1",
            "EnablePostUsernameOverride": True,
            "EnablePostIconOverride": True,
        }
    }
    with open(os.path.join(data, "config.json"), "w") as f:
        json.dump(config, f)
    process = subprocess.Popen(
        [str(BINARY), "--data", data, "--manifest", str(ROOT / "manifest.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    shim_log, found = [], []
    threading.Thread(target=_drain, args=(process, shim_log, found), daemon=True).start()
    deadline = time.monotonic() + 300
    while not found:
        assert process.poll() is None, "the shim exited:\n" + "".join(shim_log)
        assert time.monotonic() < deadline, "the shim did not start:\n" + "".join(shim_log)
        time.sleep(0.05)
    url, port = found[0].group(1), int(found[0].group(2))
    with open(os.path.join(data, "admin-token")) as f:
        token = f.read().strip()
    running = Shim(process, url, port, token, "switchboard")
    running.log = shim_log
    # response_url and links are built from SiteURL: point it at this port.
    running.ok("PUT", "/api/v4/config/patch", {"ServiceSettings": {"SiteURL": url}})
    try:
        yield running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
