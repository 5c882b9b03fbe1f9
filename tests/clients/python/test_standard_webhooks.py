"""The published `standardwebhooks` verifier, unmodified, accepts what the
shim's outgoing webhooks send: each request's Standard Webhooks signature,
across a retry (same `webhook-id`) and during a secret rotation (both the
old and the new secret verify)."""

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver:
    """A loopback callback that records every request and answers 503 to
    the first one it sees for each delivery id, so each is retried once."""

    def __init__(self):
        self.requests = []
        self.seen = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append((headers, body))
                    first = headers.get("webhook-id") not in receiver.seen
                    receiver.seen.add(headers.get("webhook-id"))
                self.send_response(503 if first else 200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count, seconds=30):
        import time

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError("only %d of %d requests" % (len(self.requests), count))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def verify(secret, headers, body):
    return Webhook(secret).verify(
        body,
        {k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")},
        json_parse=False,
    )


def test_standard_webhooks_verifies_retries_and_rotation(shim, receiver):
    team = shim.team()
    channel = shim.channel()
    word = "sw" + uuid.uuid4().hex[:8]
    hook = shim.ok(
        "POST",
        "/api/v4/hooks/outgoing",
        {"team_id": team["id"], "trigger_words": [word], "callback_urls": [receiver.url]},
    )
    secret = hook["webhook_secrets"][0]
    assert secret.startswith("whsec_")
    shim.ok("POST", "/api/v4/posts", {"channel_id": channel["id"], "message": word + " one"})
    (first, body1), (second, body2) = receiver.wait_for(2)
    # One delivery, retried: the same id on both attempts, each signed.
    assert first["webhook-id"] == second["webhook-id"]
    assert body1 == body2
    verify(secret, first, body1)
    verify(secret, second, body2)
    with pytest.raises(WebhookVerificationError):
        verify(secret, second, body2 + b"&tampered=1")
    other = shim.ok(
        "POST",
        "/api/v4/hooks/outgoing",
        {"team_id": team["id"], "trigger_words": ["x" + word], "callback_urls": [receiver.url]},
    )
    with pytest.raises(WebhookVerificationError):
        verify(other["webhook_secrets"][0], second, body2)

    rotated = shim.ok("POST", "/api/v4/hooks/outgoing/%s/rotate_secret" % hook["id"], {})
    new_secret = rotated["webhook_secrets"][0]
    assert new_secret != secret
    shim.ok("POST", "/api/v4/posts", {"channel_id": channel["id"], "message": word + " two"})
    requests = receiver.wait_for(4)
    headers, body = requests[3]
    assert len(headers["webhook-signature"].split()) == 2, "signed with both secrets"
    verify(secret, headers, body)
    verify(new_secret, headers, body)
