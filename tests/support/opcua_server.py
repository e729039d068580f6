"""An independent OPC UA server (asyncua) for the gateway's OPC UA tests and load harness.

Usage: opcua_server.py PORT STATE_DIR [--secure TRUST_DIR] [--load N] [--period MS]
                       [--user NAME:PASSWORD] [--user-cert CERT]

Namespace `urn:hazard-gateway:test` (index 2), folder Objects/Plant:
- Plant.<Type>: one variable per numeric built-in type with a fixed value (see VALUES);
- Plant.Counter: Double, +1 every PERIOD ms while STATE_DIR/pause does not exist; a restarted
  server serves the last value with its original source time (STATE_DIR/counter), as a DCS
  that restarts serves its last known value, then counts on;
- Plant.Level: Double stepping through LEVELS (deadband tests) once STATE_DIR/level-go exists;
- Plant.BadComm / Plant.BadSensor / Plant.Uncertain: status BadCommunicationError,
  BadSensorFailure, UncertainSensorNotAccurate (value 42.0);
- Plant.Tank: Double with an EURange property of [0, 200], stepping through TANK (percent
  deadband tests) once STATE_DIR/tank-go exists; Plant.Flow: the same steps, no EURange;
- with --load N: Load.0 .. Load.N-1, Double, all changed once a second.
With --secure the endpoints are Basic256Sha256 and Aes128Sha256RsaOaep, each with Sign and
with SignAndEncrypt (no unsecured one); the server's certificate is STATE_DIR/server.der (made
on first start), and client certificates must be in TRUST_DIR.
With --user and/or --user-cert, anonymous sessions are refused: a session needs that user
name and password, or a user certificate equal to CERT (PEM or DER).

asyncua 2.1.0 accepts a percent deadband but does not apply it (it logs "DeadbandType Percent
is not implemented" and reports every change). This script adds what Part 4, 7.22.2 asks of a
server: at CreateMonitoredItems a percent deadband becomes the absolute one of that percentage
of the node's EURange, and an item on a node without EURange is refused with
BadFilterNotAllowed. asyncua's own absolute deadband does the filtering.
"""

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.crypto import uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.monitored_item_service import MonitoredItemService
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
# With a 2 % deadband on a [0, 200] range (4.0): 52 (1 %) and 63 (1.5 %) are not reported,
# 60 (4 %) and 70 (3.5 %) are; an absolute 2.0 would report 63 as well.
TANK = [50.0, 52.0, 60.0, 63.0, 70.0]

# Node id -> node id of its EURange property.
EU_RANGES = {}
_create_item = MonitoredItemService._create_data_change_monitored_item


async def _create_item_with_percent(self, params):
    flt = params.RequestedParameters.Filter
    # The decoder makes the generated DataChangeFilter class, not ua.DataChangeFilter.
    if getattr(flt, "DeadbandType", None) == ua.DeadbandType.Percent:
        prop = EU_RANGES.get(params.ItemToMonitor.NodeId)
        if prop is None:
            result = ua.MonitoredItemCreateResult()
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadFilterNotAllowed)
            return result
        rng = self.aspace.read_attribute_value(prop, ua.AttributeIds.Value).Value.Value
        params.RequestedParameters.Filter = ua.DataChangeFilter(
            Trigger=flt.Trigger,
            DeadbandType=ua.DeadbandType.Absolute,
            DeadbandValue=flt.DeadbandValue / 100.0 * (rng.High - rng.Low),
        )
    return await _create_item(self, params)


MonitoredItemService._create_data_change_monitored_item = _create_item_with_percent


class OneUser:
    """Accepts one user name and password and/or one user certificate."""

    def __init__(self, login, cert_der):
        self.login, self.cert_der = login, cert_der

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        if self.login and username is not None and (username, password) == self.login:
            return User(role=UserRole.User, name=username)
        if self.cert_der and certificate is not None and bytes(certificate) == self.cert_der:
            return User(role=UserRole.User, name="certificate")
        return None


async def main():
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    args = sys.argv[3:]
    secure = args[args.index("--secure") + 1] if "--secure" in args else None
    load = int(args[args.index("--load") + 1]) if "--load" in args else 0
    period = int(args[args.index("--period") + 1]) if "--period" in args else 100
    login = tuple(args[args.index("--user") + 1].split(":", 1)) if "--user" in args else None
    user_cert = args[args.index("--user-cert") + 1] if "--user-cert" in args else None
    state.mkdir(parents=True, exist_ok=True)

    cert_der = None
    if user_cert:
        cert_der = uacrypto.der_from_x509(await uacrypto.load_certificate(user_cert))
    server = Server(user_manager=OneUser(login, cert_der) if (login or cert_der) else None)
    await server.init()
    if login or cert_der:
        tokens = []
        if login:
            tokens.append(ua.UserNameIdentityToken)
        if cert_der:
            tokens.append(ua.X509IdentityToken)
        server.set_identity_tokens(tokens)
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
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
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
    tank = await plant.add_variable(ua.NodeId("Plant.Tank", ns), ua.QualifiedName("Tank", ns), TANK[0])
    eu = await tank.add_property(
        ua.NodeId("Plant.Tank.EURange", ns), ua.QualifiedName("EURange", 0), ua.Range(Low=0.0, High=200.0))
    EU_RANGES[tank.nodeid] = eu.nodeid
    flow = await plant.add_variable(ua.NodeId("Plant.Flow", ns), ua.QualifiedName("Flow", ns), TANK[0])
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
        step, tank_step, tick = 0, 0, 0
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
            if (state / "tank-go").exists():
                tank_step += 1
                if tank_step < len(TANK) * 3 and tank_step % 3 == 0:
                    await tank.write_value(TANK[tank_step // 3])
                    await flow.write_value(TANK[tank_step // 3])
            tick += period
            if loads and tick >= 1000:
                tick = 0
                for i, node in enumerate(loads):
                    await node.write_value(count + i)


asyncio.run(main())
