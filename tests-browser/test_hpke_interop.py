"""A third party's HPKE agrees with ours: pyhpke seals the new password to the key read, with the `cryptography`
package, out of the device's certificate; the platform stores it; the CLI carries it; the real device opens it."""
import base64
import json
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

AGREEMENT_KEY_EXTENSION = x509.ObjectIdentifier("2.25.3941060999121090076")
SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)


def agreement_key(chain_pem):
    leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
    value = leaf.extensions.get_extension_for_oid(AGREEMENT_KEY_EXTENSION).value.value
    assert value[:2] == b"\x04\x20", "the extension holds a 32-byte OCTET STRING"
    return X25519PublicKey.from_public_bytes(value[2:])


def test_a_pyhpke_seal_opens_on_the_device(service, people):
    serial = "NVR-WEB-1"
    request = service.call("POST", f"/devices/{serial}/password-resets", {"mode": "off_site"}, people["installer"]["token"])
    detail = service.call("GET", f"/devices/{serial}", token=people["owner"]["token"])
    recipient = KEMKey.from_pyca_cryptography_key(agreement_key(detail["certificateChain"]))
    info = f"latchkey/password-reset/v2\n{request['id'].lower()}\n{serial}".encode()
    enc, sender = SUITE.create_sender_context(recipient, info=info)
    ciphertext = sender.seal(b"Terza2026!")
    sealed = "v2." + base64.urlsafe_b64encode(enc + ciphertext).decode().rstrip("=")
    approved = service.call("POST", f"/password-resets/{request['id']}/approve", {"sealedPassword": sealed}, people["owner"]["token"])
    assert approved["status"] == "approved"

    carried = service.cli(["reset", "approve", request["id"], "--device-address", service.devices[serial]["address"]],
                          people["owner"]["home"])
    assert carried.returncode == 0, carried.stderr
    assert "password reset successfully" in carried.stdout

    login = urllib.request.Request(f"http://{service.devices[serial]['address']}/local/v1/login", method="POST",
                                   data=json.dumps({"username": "admin", "password": "Terza2026!"}).encode(),
                                   headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(login, timeout=10) as answer:
        assert answer.status == 200
