// An independent Sparkplug B host for tests/it/sparkplug.rs: subscribes to `spBv1.0/#` on the
// broker at BROKER_URL (as HOST_ID, if set), decodes every message with Eclipse Tahu's payload encoding
// (sparkplug-payload) and prints one JSON line per message: {"topic", "payload"} (64-bit
// numbers as JSON numbers), or {"topic", "error"} when a payload does not decode. Prints
// READY once subscribed. Runs until killed; publishes PUBLISH lines it reads on stdin
// ({"topic", "payload"}, encoded with the same library) so the test can send NCMDs.
import { createInterface } from 'node:readline';
import mqtt from 'mqtt';
import sparkplug from 'sparkplug-payload';

const codec = sparkplug.get('spBv1.0');
const url = process.env.BROKER_URL;
if (!url) {
  console.error('BROKER_URL is not set');
  process.exit(2);
}

// Long values (protobufjs) and nested objects as plain JSON.
function plain(value) {
  if (value === null || value === undefined) return value;
  if (typeof value === 'object' && typeof value.low === 'number' && typeof value.high === 'number') {
    return Number(value.toString());
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Uint8Array) return Array.from(value);
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

// HOST_ID names a persistent session: the broker keeps what arrives while this host is away.
const id = process.env.HOST_ID;
const client = mqtt.connect(url, {
  clientId: id || `sparkplug-host-${process.pid}`,
  clean: !id,
  reconnectPeriod: 200,
});
client.on('connect', () => {
  client.subscribe('spBv1.0/#', { qos: 1 }, (err) => {
    if (err) {
      console.error(`subscribe failed: ${err}`);
      process.exit(3);
    }
    console.log('READY');
  });
});
client.on('message', (topic, message) => {
  let line;
  try {
    line = { topic, payload: plain(codec.decodePayload(message)) };
  } catch (e) {
    line = { topic, error: String(e) };
  }
  console.log(JSON.stringify(line));
});

createInterface({ input: process.stdin }).on('line', (text) => {
  const { topic, payload } = JSON.parse(text);
  client.publish(topic, Buffer.from(codec.encodePayload(payload)), { qos: 1 }, (err) => {
    console.log(JSON.stringify({ published: topic, error: err ? String(err) : null }));
  });
});
