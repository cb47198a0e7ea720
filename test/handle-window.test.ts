import test from 'ava';
import { messageBytes } from '../src/ipc/channel.js';
import { HandleWindow, handleWindowLimits } from '../src/ipc/handle-window.js';
import type { ToWorker } from '../src/ipc/messages.js';
import { internalCommand } from '../src/shared/node-internals.js';

const { maxHandles, maxBytes } = handleWindowLimits;

test('one handle message goes alone whatever its size; more go beside it up to maxHandles', (t) => {
  const window = new HandleWindow();
  t.true(window.admits(10 * maxBytes), 'nothing unanswered: any message goes, as under Node\'s own gate');
  window.wrote(10 * maxBytes, true);
  t.false(window.admits(100), 'not beside one whose bytes fill the window');
  window.answered();
  for (let sent = 0; sent < maxHandles; sent++) {
    t.true(window.admits(100));
    window.wrote(100, true);
  }
  t.is(window.unanswered, maxHandles);
  t.false(window.admits(100), `no more than ${maxHandles} unanswered`);
  window.answered();
  t.true(window.admits(100));
});

test('the bytes counted run from the end of the last message answered, and include messages without a handle', (t) => {
  const window = new HandleWindow();
  window.wrote(1000, true);
  window.wrote(1000, true);
  window.wrote(maxBytes - 3000, false);  // A large settings message, say.
  t.true(window.admits(1000), 'exactly maxBytes since the last answer (none yet: since the start)');
  t.false(window.admits(1001));
  window.answered();
  t.true(window.admits(2000), 'the answered message no longer counts; what was written after it still does');
  t.false(window.admits(2001));
  window.answered();
  window.wrote(5 * maxBytes, false);
  t.true(window.admits(100), 'nothing unanswered: it goes, however much is written before it');
  window.wrote(100, true);
  t.false(window.admits(100), 'but nothing beside it until it is answered');
  window.answered();
  t.true(window.admits(maxBytes));
});

test('an answer with nothing unanswered changes nothing', (t) => {
  const window = new HandleWindow();
  window.answered();
  t.is(window.unanswered, 0);
  window.wrote(maxBytes, false);
  window.wrote(10, true);
  t.false(window.admits(10));
});

test('answers are told apart by sender, in the order sent; after a message sent alone nothing may follow until its answer', (t) => {
  const window = new HandleWindow();
  window.wrote(100, true);
  window.wrote(100, true, false);  // A handle Node's cluster module sent.
  window.wrote(100, true);
  t.true(window.mayFollow());
  t.true(window.answered(), 'the first answer is ours');
  t.false(window.answered(), 'the second is the other sender\'s');
  t.true(window.answered());
  t.false(window.answered(), 'nothing left to answer');
  window.wrote(2 * maxBytes, true);
  t.false(window.mayFollow(), 'a message larger than the window went alone');
  t.false(window.admits(10));
  window.answered();
  t.true(window.mayFollow());
});

test("messageBytes counts a message as Node writes it: its envelope's JSON and a newline", (t) => {
  const written = (message: ToWorker, handle: boolean) => {
    const envelope = { cmd: internalCommand, ...message };
    return Buffer.byteLength(JSON.stringify(handle ? { cmd: 'NODE_HANDLE', type: 'net.Native', msg: envelope } : envelope)) + 1;
  };
  const messages: ToWorker[] = [
    { kind: 'connection', bytes: Buffer.from('GET / HTTP/1.1\r\nhost: a\r\n\r\n').toString('base64') },
    { kind: 'connection', bytes: 'R0VU', assignCookie: 'gc_v=v2; Path=/; Max-Age=86400; "quoted" é' },
    { kind: 'drain' },
  ];
  for (const message of messages) {
    t.is(messageBytes(message, true), written(message, true));
    t.is(messageBytes(message, false), written(message, false));
  }
});
