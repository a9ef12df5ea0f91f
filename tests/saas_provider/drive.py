#!/usr/bin/env python3
"""Drives the built saas_provider example as a scripted browser: starts it, fetches its
page, connects one tenant through the onboarding routes (the admin is pre-signed-in to
the embedded MockEntra, as MockEntra::follow does), reads that tenant's secret, stops it.

Usage: drive.py path/to/target/debug/examples/saas_provider
Exits non-zero (with what it saw) on any deviation. Only loopback traffic.
"""
import html
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)
cookie = None  # the app's one cookie, as a browser keeps it


def request(url, data=None, send_cookie=True):
    """One request, no redirect followed: (status, location, body)."""
    global cookie
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if cookie and send_cookie and url.startswith(app):
        req.add_header("Cookie", cookie)
    try:
        resp = opener.open(req, timeout=30)
    except urllib.error.HTTPError as e:
        resp = e
    for value in resp.headers.get_all("Set-Cookie") or []:
        for attr in ("HttpOnly", "Secure", "SameSite=Lax"):
            assert attr in value, f"cookie without {attr}: {value}"
        pair = value.split(";")[0]
        cookie = None if pair.endswith("=") else pair
    location = resp.headers.get("Location")
    if location:
        location = urllib.parse.urljoin(url, location)
    return resp.status, location, resp.read().decode("utf-8", "replace")


def form_post(page):
    """The action and hidden fields of Entra's (the mock's) form_post page."""
    action = html.unescape(re.search(r'<form [^>]*action="([^"]+)"', page).group(1))
    fields = [(html.unescape(n), html.unescape(v)) for n, v in
              re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)]
    return action, urllib.parse.urlencode(fields).encode()


proc = subprocess.Popen([sys.argv[1]], stdout=subprocess.PIPE, text=True)
try:
    line = proc.stdout.readline()
    match = re.search(r"listening at (http://\S+/)", line)
    assert match, f"no URL line: {line!r}"
    app = match.group(1)
    status, _, page = request(app)
    assert status == 200 and 'id="connect"' in page and 'id="tenants"' in page, page

    # "Connect your Azure tenant": the button POSTs to the routes' start.
    status, entra, _ = request(app + "onboarding/start", data=b"")
    assert status == 303 and entra and not entra.startswith(app), (status, entra)
    status, _, page = request(entra)  # the mock signs the preset admin in: a form_post page
    assert status == 200 and "hiddenform" in page, (status, page[:300])
    action, body = form_post(page)
    # A cross-site POST: the SameSite=Lax cookie does not go along.
    status, location, _ = request(action, data=body, send_cookie=False)
    assert status == 303, status
    while location and location.startswith(app) and "/onboarding/" in location:
        status, location, _ = request(location)
    assert location and not location.startswith(app), f"expected Entra's consent page, got {location}"
    status, back, _ = request(location)  # the admin consents; Entra redirects back
    assert status == 302 and back.startswith(app), (status, back)
    status, done, _ = request(back)
    assert status == 303 and "onboarding=linked" in done, done
    status, _, page = request(done)
    assert 'data-outcome="ok"' in page, page
    rows = re.findall(r'<tr id="tenant-([0-9a-f-]{36})">', page)
    assert len(rows) == 1, page
    tenant = rows[0]
    assert f'id="read-secret-{tenant}"' in page, page

    status, _, page = request(f"{app}tenants/{tenant}/secret", data=b"")
    assert status == 200 and "db-password read" in page, page
    print(f"saas_provider: tenant {tenant} connected through the routes; its vault answered")
finally:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
