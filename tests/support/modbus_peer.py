"""An independent Modbus TCP peer for the test suite (pymodbus).

Usage: modbus_peer.py PORT HOLDING_WORDS INPUT_WORDS
HOLDING_WORDS / INPUT_WORDS: comma-separated register values from address 0.
Prints READY once listening. Serves until killed.
"""
import asyncio
import sys

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartAsyncTcpServer


def words(arg):
    return [int(w, 0) for w in arg.split(",") if w]


async def main():
    port = int(sys.argv[1])
    hr, ir = words(sys.argv[2]), words(sys.argv[3])
    # pymodbus data blocks are 1-based internally: block address 1 serves protocol address 0.
    device = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, hr or [0]),
        ir=ModbusSequentialDataBlock(1, ir or [0]),
    )
    context = ModbusServerContext(devices=device, single=True)
    print("READY", flush=True)
    await StartAsyncTcpServer(context=context, address=("127.0.0.1", port))


asyncio.run(main())
