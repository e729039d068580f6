"""Independent reference for the uplink ciphers: SM4 from gmssl, AES from cryptography.

Reads one JSON document on stdin, {"ops": [{"op": "encrypt"|"decrypt", "cipher": NAME,
"key": HEX, "iv": HEX or null, "data": HEX}, ...]}, and prints a JSON list with, for each op,
{"ok": HEX} or {"error": TEXT}. Ciphers: sm4-cbc, sm4-ecb, aes-128-ecb, aes-192-ecb,
aes-256-ecb (or with `_` for `-`), all with PKCS#7 padding.
"""
import json
import sys

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl.sm4 import SM4_DECRYPT, SM4_ENCRYPT, CryptSM4


def sm4(op, mode, key, iv, data):
    c = CryptSM4()
    c.set_key(key, SM4_ENCRYPT if op == "encrypt" else SM4_DECRYPT)
    if mode == "cbc":
        return c.crypt_cbc(iv, data)
    return c.crypt_ecb(data)


def aes_ecb(op, key, data):
    cipher = Cipher(algorithms.AES(key), modes.ECB())
    if op == "encrypt":
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        enc = cipher.encryptor()
        return enc.update(padded) + enc.finalize()
    dec = cipher.decryptor()
    padded = dec.update(data) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def run(op):
    key = bytes.fromhex(op["key"])
    iv = bytes.fromhex(op["iv"]) if op.get("iv") else None
    data = bytes.fromhex(op["data"])
    name = op["cipher"].replace("_", "-")
    if name == "sm4-cbc":
        return sm4(op["op"], "cbc", key, iv, data)
    if name == "sm4-ecb":
        return sm4(op["op"], "ecb", key, iv, data)
    if name.startswith("aes-") and name.endswith("-ecb"):
        if len(key) * 8 != int(name.split("-")[1]):
            raise ValueError("key length does not match " + name)
        return aes_ecb(op["op"], key, data)
    raise ValueError("unknown cipher " + name)


def main():
    doc = json.load(sys.stdin)
    out = []
    for op in doc["ops"]:
        try:
            out.append({"ok": run(op).hex()})
        except Exception as e:  # reported per op, so one bad input does not hide the rest
            out.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
