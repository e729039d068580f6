"""An independent OPC UA server (asyncua) for the gateway's OPC UA tests and load harness.

Usage: opcua_server.py PORT STATE_DIR [--secure TRUST_DIR] [--load N] [--period MS]

Namespace `urn:hazard-gateway:test` (index 2), folder Objects/Plant:
- Plant.<Type>: one variable per numeric built-in type with a fixed value (see VALUES);
- Plant.Counter: Double, +1 every PERIOD ms while STATE_DIR/pause does not exist; a restarted
  server serves the last value with its original source time (STATE_DIR/counter), as a DCS
  that restarts serves its last known value, then counts on;
- Plant.Level: Double stepping through LEVELS (deadband tests) once STATE_DIR/level-go exists;
- Plant.BadComm / Plant.BadSensor / Plant.Uncertain: status BadCommunicationError,
  BadSensorFailure, UncertainSensorNotAccurate (value 42.0);
- with --load N: Load.0 .. Load.N-1, Double, all changed once a second.
With --secure the only endpoint is Basic256Sha256 SignAndEncrypt plus Aes128Sha256RsaOaep
SignAndEncrypt; the server's certificate is STATE_DIR/server.der (made on first start), and
client certificates must be in TRUST_DIR.
"""

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography.x509.oid import ExtendedKeyUsageOID

VALUES = [
    ("Boolean", ua.VariantType.Boolean, True),
    ("SByte", ua.VariantType.SByte, -128),
    ("Byte", ua.VariantType.Byte, 255),
    ("Int16", ua.VariantType.Int16, -32768),
    ("UInt16", ua.VariantType.UInt16, 65535),
    ("Int32", ua.VariantType.Int32, -2147483648),
    ("UInt32", ua.VariantType.UInt32, 4294967295),
    ("Int64", ua.VariantType.Int64, -9007199254740992),
    ("UInt64", ua.VariantType.UInt64, 9007199254740993),
    ("Float", ua.VariantType.Float, 1.5),
    ("Double", ua.VariantType.Double, -1234.5678),
]
LEVELS = [10.0, 10.2, 10.4, 12.0, 12.3, 11.5, 15.0]


async def main():
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    args = sys.argv[3:]
    secure = args[args.index("--secure") + 1] if "--secure" in args else None
    load = int(args[args.index("--load") + 1]) if "--load" in args else 0
    period = int(args[args.index("--period") + 1]) if "--period" in args else 100
    state.mkdir(parents=True, exist_ok=True)

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/test/")
    server.set_server_name("hazard-gateway test server")
    # Must match the URI in the server's certificate; clients check it.
    await server.set_application_uri("urn:hazard-gateway:test-server")
    if secure:
        key, cert = state / "server.pem", state / "server.der"
        await cert_gen.setup_self_signed_certificate(
            key, cert, "urn:hazard-gateway:test-server", "127.0.0.1",
            [ExtendedKeyUsageOID.SERVER_AUTH], {"commonName": "hazard-gateway test server"},
        )
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        server.set_security_policy([
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
        ])
        store = TrustStore([Path(secure)], [])
        await store.load()
        # Only the trust list is checked (the gateway's self-signed certificate has no CA).
        server.set_certificate_validator(
            CertificateValidator(CertificateValidatorOptions.TRUSTED, store))
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:hazard-gateway:test")
    plant = await server.nodes.objects.add_folder(ua.NodeId("Plant", ns), ua.QualifiedName("Plant", ns))
    for name, vt, value in VALUES:
        await plant.add_variable(ua.NodeId(f"Plant.{name}", ns), ua.QualifiedName(name, ns), ua.Variant(value, vt))
    counter_file = state / "counter"
    count, stamp = 0.0, datetime.now(timezone.utc)
    if counter_file.exists():
        text, iso = counter_file.read_text().split()
        count, stamp = float(text), datetime.fromisoformat(iso)
    counter = await plant.add_variable(ua.NodeId("Plant.Counter", ns), ua.QualifiedName("Counter", ns), count)
    level = await plant.add_variable(ua.NodeId("Plant.Level", ns), ua.QualifiedName("Level", ns), LEVELS[0])
    statuses = [
        ("BadComm", ua.StatusCodes.BadCommunicationError),
        ("BadSensor", ua.StatusCodes.BadSensorFailure),
        ("Uncertain", ua.StatusCodes.UncertainSensorNotAccurate),
    ]
    status_nodes = []
    for name, code in statuses:
        node = await plant.add_variable(ua.NodeId(f"Plant.{name}", ns), ua.QualifiedName(name, ns), 42.0)
        status_nodes.append((node, code))
    loads = []
    if load:
        folder = await server.nodes.objects.add_folder(ua.NodeId("Load", ns), ua.QualifiedName("Load", ns))
        for i in range(load):
            loads.append(await folder.add_variable(ua.NodeId(f"Load.{i}", ns), ua.QualifiedName(f"L{i}", ns), 0.0))

    async with server:
        await counter.write_value(ua.DataValue(ua.Variant(count, ua.VariantType.Double), SourceTimestamp=stamp))
        for node, code in status_nodes:
            await node.write_value(ua.DataValue(ua.Variant(42.0, ua.VariantType.Double), ua.StatusCode(code)))
        step, tick = 0, 0
        while True:
            await asyncio.sleep(period / 1000)
            if not (state / "pause").exists():
                count += 1
                stamp = datetime.now(timezone.utc)
                await counter.write_value(
                    ua.DataValue(ua.Variant(count, ua.VariantType.Double), SourceTimestamp=stamp))
                tmp = state / "counter.tmp"
                tmp.write_text(f"{count} {stamp.isoformat()}")
                tmp.replace(counter_file)
            if (state / "level-go").exists():
                step += 1
                if step < len(LEVELS) * 3 and step % 3 == 0:
                    await level.write_value(LEVELS[step // 3])
            tick += period
            if loads and tick >= 1000:
                tick = 0
                for i, node in enumerate(loads):
                    await node.write_value(count + i)


asyncio.run(main())
