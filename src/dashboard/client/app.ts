// The dashboard page's entry module, served at /client/app.js: it wires the modules beside it to the page. The
// `import type`s from @server vanish from the output; the browser loads only this folder's modules.
import type { FeedMessage } from '@server/dashboard/messages.js';
import { renderCharts } from './chart.js';
import { wireControls } from './controls.js';
import { byId } from './dom.js';
import { addEvent, renderEvents } from './event-log.js';
import { connectFeed, showConnection } from './feed.js';
import { wireLogs } from './logs.js';
import { renderRollout, wireRolloutControls } from './rollout.js';
import { forgetToken, keepToken, takeToken } from './session.js';
import { maxEvents, state } from './state.js';
import { renderTables } from './tables.js';

function render(): void {
  if (!state.status) return;
  renderTables(state.status, state.rates);
  renderRollout(state.status.rollout);
}

function onMessage(message: FeedMessage): void {
  switch (message.type) {
    case 'snapshot':
      state.status = message.status;
      state.rates = message.rates;
      state.events = message.events.slice(-maxEvents);
      state.points = message.history;
      state.historyMs = message.historyMs;
      renderEvents();
      render();
      renderCharts();
      return;
    case 'update':
      state.status = message.status;
      state.rates = message.rates;
      render();
      return;
    case 'sample':
      state.points.push(message.point);
      state.points.splice(0, state.points.findIndex((point) => point.time >= message.point.time - state.historyMs));  // The new point at the latest.
      renderCharts();
      return;
    case 'event':
      addEvent(message.event);
  }
}

function showLogin(error = ''): void {
  forgetToken();
  byId('dashboard').hidden = true;
  byId('login').hidden = false;
  byId('login-error').textContent = error;
  showConnection('no token', 'offline');
}

function open(): void {
  byId('login').hidden = true;
  byId('dashboard').hidden = false;
  connectFeed({ onMessage, onTokenRefused: () => showLogin('That token was refused.') });
}

const token = takeToken();
wireControls();
wireRolloutControls();
wireLogs();
byId('login').addEventListener('submit', (event) => {
  event.preventDefault();
  keepToken(byId<HTMLInputElement>('token-input').value.trim());
  open();
});
let resizeFrame = 0;
window.addEventListener('resize', () => {
  cancelAnimationFrame(resizeFrame);
  resizeFrame = requestAnimationFrame(renderCharts);
});
if (token) open();
else showLogin();
