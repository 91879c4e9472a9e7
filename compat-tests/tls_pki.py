"""A test PKI made with `cryptography`: a CA and certificates for 127.0.0.1/localhost that serve
as server and client certificates (both extended key usages), written as PEM files; and
`strata local` started on HTTPS with them."""

import datetime
import ipaddress
import os
import subprocess
import time
from pathlib import Path

import requests

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Pki:
    def __init__(self, folder: Path, name="strata test CA"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_path = self.folder / "ca.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem, cn="127.0.0.1"):
        """Writes STEM.crt and STEM.key (new key, random serial); returns (crt, key, serial)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        crt, k = self.folder / f"{stem}.crt", self.folder / f"{stem}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        return crt, k, serial

    def rotate(self, crt, key, stem):
        """Issues a new pair and renames it over CRT and KEY (as a secret update does); its serial."""
        new_crt, new_key, serial = self.issue(stem)
        os.replace(new_key, key)
        os.replace(new_crt, crt)
        return serial


def peer_serial(host, port, ca):
    """The serial of the certificate a new TLS connection to host:port is served."""
    import socket
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
        return x509.load_der_x509_certificate(s.getpeercert(binary_form=True)).serial_number


def wait_https(url, proc, what, ca, cert=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see its log")
        try:
            if requests.get(url + "/readyz", timeout=1, verify=str(ca), cert=cert).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready at {url} after {timeout}s")


def launch(c, name, args, env, url, ca, cert=None):
    """Starts `strata ARGS` as c.procs[name] and waits for its /readyz over HTTPS."""
    from conftest import BIN

    log = open(c.logs / f"{name}.log", "ab")
    p = subprocess.Popen([BIN, *args], env=dict(os.environ, RUST_LOG="info", **c.env, **env), stdout=log, stderr=log)
    c.procs[name] = (p, args, env, url)
    wait_https(url, p, name, ca, cert)
    return p


def start_https_local(tmp, pki, env=None):
    """`strata local` on HTTPS, plain HTTP on a second port (c.plain)."""
    from conftest import Cluster, free_port

    crt, key, serial = pki.issue("local")
    port, plain = free_port(), free_port()
    c = Cluster("local", [f"https://127.0.0.1:{port}"], "", "", tmp / "local", logs=tmp)
    c.env = dict(env or {})
    launch(c, "local", ["local", "--data-dir", str(c.data_dir), "--listen", f"127.0.0.1:{port}",
                        "--tls-cert", str(crt), "--tls-key", str(key), "--http-listen", f"127.0.0.1:{plain}"],
           {}, c.endpoint, pki.ca_path)
    fields = dict(l.split(" = ", 1) for l in (c.data_dir / "credentials").read_text().splitlines() if " = " in l)
    c.access_key, c.secret_key = fields["access_key"], fields["secret_key"]
    c.port, c.plain, c.crt, c.key, c.serial = port, f"http://127.0.0.1:{plain}", crt, key, serial
    return c
