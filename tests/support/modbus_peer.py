"""An independent Modbus peer for the test suite (pymodbus).

Usage:
  modbus_peer.py PORT HOLDING_WORDS INPUT_WORDS
      Modbus TCP on PORT; HOLDING_WORDS / INPUT_WORDS: comma-separated register values from
      address 0.
  modbus_peer.py --spec SPEC.json
      SPEC = {"transport": "tcp" | "rtu_over_tcp" | "rtu", "port": N (tcp kinds),
              "serial": PATH, "baud": N (rtu),
              "devices": {"UNIT": [POINT, ...]}}
      POINT = {"table": "co" | "di" | "hr" | "ir", "address": N, "type": T, "order": O,
               "value": V, ("bit": N), ("length": registers for ascii)}
      The peer encodes each value itself with Python's struct module, so the gateway's decoder
      is checked against an encoder it does not share. Only listed addresses exist: reading
      any other gets exception 02 (illegal data address); units not listed get exception 04.
Prints READY once serving. Serves until killed.
"""
import asyncio
import json
import struct
import sys

from pymodbus import FramerType
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

FORMATS = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "u64": ">Q", "i64": ">q",
           "f32": ">f", "f64": ">d"}


def words(arg):
    return [int(w, 0) for w in arg.split(",") if w]


def encode(point):
    """Register words for one point, in the point's byte/word order."""
    kind = point.get("type", "u16")
    value = point["value"]
    if kind in FORMATS:
        value = int(value) if kind[0] in "ui" else float(value)
        raw = struct.pack(FORMATS[kind], value)
    elif kind in ("bcd16", "bcd32"):
        digits = 4 if kind == "bcd16" else 8
        raw = bytes.fromhex(str(int(value)).rjust(digits, "0"))
    elif kind == "ascii":
        n = 2 * point["length"]
        raw = str(value).rjust(n).encode("ascii")[:n]
    elif kind == "bit":
        return [1 << point["bit"]] if value else [0]
    else:
        raise ValueError(f"unknown type {kind}")
    regs = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    order = point.get("order", "ABCD")
    if order in ("CDAB", "DCBA"):
        regs.reverse()
    if order in ("BADC", "DCBA"):
        regs = [r[::-1] for r in regs]
    return [int.from_bytes(r, "big") for r in regs]


def device(unit, points):
    tables = {"co": {}, "di": {}, "hr": {}, "ir": {}}
    for p in points:
        table = tables[p["table"]]
        if p["table"] in ("co", "di"):
            table[p["address"]] = bool(p["value"])
            continue
        for i, w in enumerate(encode(p)):
            # Several `bit` points may share one register.
            table[p["address"] + i] = table.get(p["address"] + i, 0) | w
    def block(name):
        kind = DataType.BITS if name in ("co", "di") else DataType.REGISTERS
        # pymodbus needs at least one entry per table: an empty table gets address 65535 only.
        items = sorted(tables[name].items()) or [(65535, 0)]
        return [SimData(a, values=[v], datatype=kind) for a, v in items]
    return SimDevice(unit, simdata=(block("co"), block("di"), block("hr"), block("ir")))


async def main():
    if sys.argv[1] == "--spec":
        with open(sys.argv[2]) as f:
            spec = json.load(f)
        context = [device(int(unit), points) for unit, points in spec["devices"].items()]
        print("READY", flush=True)
        if spec["transport"] == "rtu":
            await StartAsyncSerialServer(context=context, port=spec["serial"], framer=FramerType.RTU,
                                         baudrate=spec.get("baud", 9600), ignore_missing_devices=True)
        else:
            framer = FramerType.RTU if spec["transport"] == "rtu_over_tcp" else FramerType.SOCKET
            await StartAsyncTcpServer(context=context, address=("127.0.0.1", spec["port"]), framer=framer,
                                      ignore_missing_devices=True)
        return
    port = int(sys.argv[1])
    hr, ir = words(sys.argv[2]), words(sys.argv[3])
    # pymodbus data blocks are 1-based internally: block address 1 serves protocol address 0.
    dev = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, hr or [0]),
        ir=ModbusSequentialDataBlock(1, ir or [0]),
    )
    context = ModbusServerContext(devices=dev, single=True)
    print("READY", flush=True)
    await StartAsyncTcpServer(context=context, address=("127.0.0.1", port))


asyncio.run(main())
