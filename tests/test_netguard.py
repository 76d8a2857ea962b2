"""The outbound URL guard: refused URL forms are never connected to, allowed ones pass,
redirects are not followed, and a connection goes to the address that was checked (with
the original Host and TLS name) however DNS answers next."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from netguard import URLRefused, check_url, guarded_async_client, guarded_client, resolve

REAL_GETADDRINFO = socket.getaddrinfo


class Listener(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that counts accepted connections and records requests."""

    daemon_threads = True

    def __init__(self, location: str | None = None) -> None:
        self.connections = 0
        self.requests: list[dict[str, str]] = []
        self.location = location  # answer 302 to this URL
        self.sni: list[str | None] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port = self.server_address[1]

    def get_request(self):  # one per accepted TCP connection
        connection = super().get_request()
        self.connections += 1
        return connection


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        server: Listener = self.server  # type: ignore[assignment]
        server.requests.append({"path": self.path, "host": self.headers.get("Host", "")})
        if server.location:
            self.send_response(302)
            self.send_header("Location", server.location)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(server: Listener) -> Iterator[Listener]:
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def listener() -> Iterator[Listener]:
    with serve(Listener()) as server:
        yield server


class FakeDns:
    """``socket.getaddrinfo`` with a table of names; numeric hosts go to the real one
    (numeric only: nothing ever reaches a real DNS server)."""

    def __init__(self) -> None:
        self.table: dict[str, list[list[str]]] = {}  # name -> successive answers
        self.lookups: list[str] = []

    def add(self, name: str, *answers: list[str]) -> None:
        self.table[name] = list(answers)

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.lower() in self.table:
            self.lookups.append(name.lower())
            answers = self.table[name.lower()]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port or 0, 0, 0) if ":" in a else (a, port or 0),
                )
                for a in addresses
            ]
        return REAL_GETADDRINFO(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)


@pytest.fixture
def dns(monkeypatch) -> FakeDns:
    fake = FakeDns()
    fake.add("private.example", ["10.1.2.3"])
    fake.add("loopback.example", ["127.0.0.1"])
    fake.add("127.0.0.1.nip.io", ["127.0.0.1"])
    fake.add("linklocal.example", ["169.254.10.10"])
    fake.add("mapped.example", ["::ffff:127.0.0.1"])
    fake.add("ula.example", ["fd12:3456::1"])
    fake.add("rebind.example", ["93.184.215.14", "127.0.0.1"])  # one public, one not
    fake.add("cgnat.example", ["100.64.1.1"])
    fake.add("api.example", ["93.184.215.14"])
    fake.add("v6.example", ["2606:4700:4700::1111"])
    fake.add("lan.example", ["192.168.1.20"])
    fake.add("localhost", ["127.0.0.1", "::1"])
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


# Every form points at the listener's port where a port fits, so a guard that let one
# through would be caught connecting.
REFUSED = [
    "http://127.0.0.1:{port}/",
    "http://127.0.0.2:{port}/",
    "http://2130706433:{port}/",  # decimal 127.0.0.1
    "http://0x7f000001:{port}/",  # hex
    "http://0x7f.1:{port}/",  # hex, short
    "http://0177.0.0.1:{port}/",  # octal
    "http://0177.1:{port}/",
    "http://017700000001:{port}/",
    "http://127.1:{port}/",  # short
    "http://127.0.1:{port}/",
    "http://127.0.0.1.:{port}/",  # trailing dot
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::127.0.0.1]:{port}/",  # IPv4-compatible IPv6
    "http://[64:ff9b::7f00:1]:{port}/",  # NAT64 of loopback
    "http://[2002:7f00:1::]:{port}/",  # 6to4 of loopback
    "http://[::1]:{port}/",
    "http://[0:0:0:0:0:0:0:1]:{port}/",
    "http://0.0.0.0:{port}/",
    "http://0:{port}/",
    "http://[::]:{port}/",
    "http://localhost:{port}/",
    "http://localhost.:{port}/",
    "http://LOCALHOST:{port}/",
    "http://api.localhost:{port}/",
    "http://a.b.LocalHost.:{port}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:a9fe:a9fe::]/",  # 6to4 of the metadata address
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://168.63.129.16/",
    "http://169.254.170.2/v2/credentials",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./",
    "http://metadata/",
    "http://instance-data/",
    "http://private.example:{port}/",  # a name resolving to a private address
    "http://loopback.example:{port}/",
    "http://127.0.0.1.nip.io:{port}/",
    "http://linklocal.example:{port}/",
    "http://mapped.example:{port}/",
    "http://ula.example:{port}/",
    "http://rebind.example:{port}/",  # ANY private answer refuses
    "http://cgnat.example:{port}/",
    "https://good.example@127.0.0.1:{port}/",  # user info
    "http://user:pass@api.example:{port}/",
    "http://good.example\\@127.0.0.1:{port}/",  # backslash
    "http://100.64.0.1:{port}/",  # CGNAT
    "http://100.127.255.254:{port}/",
    "http://10.0.0.1:{port}/",
    "http://172.16.5.4:{port}/",
    "http://192.168.0.1:{port}/",
    "http://[fc00::1]:{port}/",
    "http://[fe80::1]:{port}/",
    "http://[fe80::1%25lo]:{port}/",  # zone id
    "http://169.254.1.1:{port}/",
    "http://224.0.0.1:{port}/",  # multicast
    "http://[ff02::1]:{port}/",
    "http://192.0.2.1:{port}/",  # documentation
    "http://198.51.100.7:{port}/",
    "http://203.0.113.9:{port}/",
    "http://[2001:db8::1]:{port}/",
    "http://198.18.0.1:{port}/",  # benchmarking
    "http://240.0.0.1:{port}/",  # reserved
    "http://255.255.255.255:{port}/",
    "http://[2001::1]:{port}/",  # Teredo
    "http://api.example:0/",
    "http://api.example:65536/",
    "http://api.exa mple:{port}/",  # whitespace
    "http://api.example\x00.evil:{port}/",  # NUL
    "http://api.example:{port}/\t",
    "http:///path",  # no host
    "http://api_example%2f:{port}/",
    "ftp://api.example/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/",
    "unresolvable.invalid",
    "http://unresolvable.invalid:{port}/",
]


@pytest.mark.parametrize("form", REFUSED)
def test_refused_form_raises_and_is_never_connected_to(form, listener, dns):
    url = form.format(port=listener.port)
    with guarded_client(allow_http=True) as client, pytest.raises(URLRefused):
        client.get(url)
    with pytest.raises(URLRefused):  # the functions on their own say the same
        parsed = check_url(url, allow_http=True)
        resolve(parsed.raw_host.decode(), parsed.port or 80)
    assert listener.connections == 0


@pytest.mark.parametrize("form", REFUSED)
async def test_refused_form_is_refused_by_the_async_client_too(form, listener, dns):
    async with guarded_async_client(allow_http=True) as client:
        with pytest.raises(URLRefused):
            await client.get(form.format(port=listener.port))
    assert listener.connections == 0


def test_the_table_holds_enough_forms():
    assert len(REFUSED) >= 40


METADATA = [
    "http://169.254.169.254/",
    "http://metadata/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://metadata.google.internal/",
    "http://169.254.169.254.:{port}/",
]


@pytest.mark.parametrize("form", METADATA)
def test_allow_private_never_admits_metadata_addresses(form, listener, dns):
    with guarded_client(allow_http=True, allow_private=True) as client, pytest.raises(URLRefused):
        client.get(form.format(port=listener.port))
    assert listener.connections == 0


def test_http_needs_allow_http(listener, dns):
    with pytest.raises(URLRefused, match="https"):
        check_url("http://api.example/")
    with guarded_client(allow_private=True) as client, pytest.raises(URLRefused):
        client.get(f"http://127.0.0.1:{listener.port}/")
    assert listener.connections == 0


ALLOWED = [
    ("https://api.example/v1/chat", {}),
    ("https://api.example:8443/x?y=1", {}),
    ("https://v6.example/", {}),
    ("https://8.8.8.8/", {}),
    ("https://[2606:4700:4700::1111]/", {}),
    ("https://xn--bcher-kva.example/", {}),  # IDNA, already encoded
    ("http://api.example/", {"allow_http": True}),
    ("http://127.0.0.1:11434/v1", {"allow_http": True, "allow_private": True}),
    ("http://[::1]:8080/", {"allow_http": True, "allow_private": True}),
    ("http://localhost:11434/v1", {"allow_http": True, "allow_private": True}),
    ("https://lan.example/", {"allow_private": True}),
    ("https://ula.example/", {"allow_private": True}),
    ("https://cgnat.example/", {"allow_private": True}),  # a tailnet service
    ("https://10.0.0.7/", {"allow_private": True}),
]


@pytest.mark.parametrize("url, flags", ALLOWED)
def test_allowed_forms_pass_the_checks_without_connecting(url, flags, listener, dns, monkeypatch):
    monkeypatch.setitem(dns.table, "xn--bcher-kva.example", [["93.184.215.14"]])
    parsed = check_url(url, **flags)
    addresses = resolve(
        parsed.raw_host.decode(),
        parsed.port or 443,
        allow_private=flags.get("allow_private", False),
    )
    assert addresses
    assert listener.connections == 0


def test_loopback_is_reachable_with_allow_private(listener):
    with guarded_client(allow_http=True, allow_private=True) as client:
        response = client.get(f"http://127.0.0.1:{listener.port}/ping")
    assert response.status_code == 200 and response.text == "ok"
    assert listener.connections == 1


async def fetch_async(url: str, **flags: bool) -> httpx.Response:
    async with guarded_async_client(**flags) as client:
        return await client.get(url, follow_redirects=True)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_redirect_to_a_metadata_address_is_returned_not_followed(flavour):
    with serve(Listener(location="http://169.254.169.254/latest/meta-data/")) as server:
        url = f"http://127.0.0.1:{server.port}/hook"
        if flavour == "sync":
            with guarded_client(allow_http=True, allow_private=True) as client:
                response = client.get(url, follow_redirects=True)
        else:
            response = asyncio.run(fetch_async(url, allow_http=True, allow_private=True))
        assert response.status_code == 302
        assert response.headers["location"].startswith("http://169.254.169.254/")
        assert len(server.requests) == 1


def test_a_redirect_is_never_followed_even_to_an_allowed_address(listener):
    with serve(Listener(location=f"http://127.0.0.1:{listener.port}/next")) as redirector:
        with guarded_client(allow_http=True, allow_private=True) as client:
            response = client.get(f"http://127.0.0.1:{redirector.port}/", follow_redirects=True)
        assert response.status_code == 302
    assert listener.connections == 0  # never connected onward


def test_the_connection_goes_to_the_checked_address_not_a_later_dns_answer(listener, dns):
    # First answer loopback (allowed here), then the metadata address: a rebinding resolver.
    dns.add("service.test", ["127.0.0.1"], ["169.254.169.254"])
    with guarded_client(allow_http=True, allow_private=True) as client:
        response = client.get(f"http://service.test:{listener.port}/a")
        assert response.status_code == 200
        assert listener.requests == [{"path": "/a", "host": f"service.test:{listener.port}"}]
        assert dns.lookups == ["service.test"]  # resolved once, by the guard only
        with pytest.raises(URLRefused, match="metadata"):  # the next request resolves anew
            client.get(f"http://service.test:{listener.port}/b")
    assert listener.connections == 1


async def test_the_async_client_pins_the_checked_address_too(listener, dns):
    dns.add("service.test", ["127.0.0.1"], ["10.9.9.9"])
    async with guarded_async_client(allow_http=True, allow_private=True) as client:
        response = await client.get(f"http://service.test:{listener.port}/a")
        assert response.status_code == 200
        assert listener.requests[0]["host"] == f"service.test:{listener.port}"
    async with guarded_async_client(allow_http=True) as client:
        with pytest.raises(URLRefused, match="private"):
            await client.get(f"http://service.test:{listener.port}/b")
    assert dns.lookups == ["service.test", "service.test"]
    assert listener.connections == 1


def _self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_to_a_pinned_address_keeps_the_sni_and_certificate_name(dns):
    dns.add("service.test", ["127.0.0.1"])
    with tempfile.TemporaryDirectory() as folder:
        cert, key = _self_signed("service.test", Path(folder))
        server = Listener()
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(cert, key)
        server_context.sni_callback = lambda sock, name, ctx: server.sni.append(name)
        server.socket = server_context.wrap_socket(server.socket, server_side=True)
        client_context = ssl.create_default_context(cafile=str(cert))
        with serve(server) as tls:
            with guarded_client(allow_private=True, verify=client_context) as client:
                response = client.get(f"https://service.test:{tls.port}/secure")
                assert response.status_code == 200
                # The same server by its IP: the certificate does not name it, so the
                # name checked is the original host's, not the pinned address.
                with pytest.raises(httpx.ConnectError):
                    client.get(f"https://127.0.0.1:{tls.port}/")
            assert tls.sni[0] == "service.test"
            assert tls.requests[0] == {"path": "/secure", "host": f"service.test:{tls.port}"}
