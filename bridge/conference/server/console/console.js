// The moderator console. It speaks only the public API (docs/conference-api.md): REST for state and
// actions, Socket.IO (namespace /chat) for live events. After every event it re-reads the meeting, so
// what it shows is always the server's state, never a guess built from events.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_EVENTS = 200;
const state = { token: "", space: "", meetingId: "", details: null, socket: null, refresh: null };

function show(id, visible) { $(id).hidden = !visible; }

function say(text) { $("message").textContent = text || ""; }

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: {
      "Authorization": `Bearer ${state.token}`,
      "Accept": "application/json",
      "accept-version": "1.1",
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error(data && data.message ? data.message : `${response.status}`);
    error.status = response.status;
    error.code = data && data.error;
    throw error;
  }
  return data;
}

// An action from a button: its refusal is shown to the moderator with the server's reason.
async function act(label, method, path, body) {
  try {
    say("");
    await api(method, path, body);
    scheduleRefresh();
  } catch (error) {
    say(`${label}: ${error.code ? error.code + " — " : ""}${error.message}`);
  }
}

function meetingPath() {
  return `/api/spaces/${encodeURIComponent(state.space)}/meetings/${encodeURIComponent(state.meetingId)}`;
}

// -- sign in and spaces ------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    const spaces = await api("GET", "/api/spaces");
    sessionStorage.setItem("spaces-token", token);
    const select = $("space");
    select.replaceChildren(...spaces.map((s) => new Option(`${s.name} (${s.spaceId})`, s.spaceId)));
    show("signin", false);
    show("space-picker", true);
    show("events", true);
    connect();
    const wanted = new URLSearchParams(location.search).get("space");
    if (wanted && spaces.some((s) => s.spaceId === wanted)) select.value = wanted;
    await pickSpace(select.value);
  } catch (error) {
    state.token = "";
    say(error.status === 401 ? "Unknown token." : `Cannot sign in: ${error.message}`);
  }
}

function signOut() {
  sessionStorage.removeItem("spaces-token");
  location.reload();
}

async function pickSpace(space) {
  state.space = space;
  state.meetingId = "";
  show("meeting", true);
  subscribe();
  await refresh();
}

// -- live events -----------------------------------------------------------------------------------

function connect() {
  const socket = io("/chat", { auth: { token: state.token }, transports: ["websocket", "polling"] });
  state.socket = socket;
  socket.on("connect", () => {
    $("connection").textContent = "live";
    $("connection").classList.add("live");
    subscribe();
    scheduleRefresh();  // events missed while disconnected: read the state again
  });
  socket.on("disconnect", () => {
    $("connection").textContent = "reconnecting…";
    $("connection").classList.remove("live");
  });
  socket.on("connect_error", () => { $("connection").textContent = "cannot connect"; });
  socket.on("MEDIA_SESSION_RESPONSE", (event) => {
    if (event.topicId !== state.space) return;
    logEvent(event);
    scheduleRefresh();
  });
}

function subscribe() {
  if (state.socket && state.socket.connected && state.space) {
    state.socket.emit("SUBSCRIBE_CHANNEL", { channel: { type: "topic", _id: state.space } });
  }
}

function logEvent(event) {
  const item = document.createElement("li");
  const time = new Date().toLocaleTimeString();
  item.textContent = `${time} ${event.category} ${JSON.stringify(event.content)}`;
  const log = $("event-log");
  log.prepend(item);
  while (log.children.length > MAX_EVENTS) log.lastElementChild.remove();
}

function scheduleRefresh() {
  clearTimeout(state.refresh);
  state.refresh = setTimeout(refresh, 50);  // a burst of events: one read
}

// -- the meeting -----------------------------------------------------------------------------------

async function refresh() {
  if (!state.space) return;
  try {
    if (!state.meetingId || (state.details && state.details.state !== "active")) {
      const meeting = await api("GET", `/api/spaces/${encodeURIComponent(state.space)}/activemeeting`);
      state.meetingId = meeting.meetingId;
    }
    state.details = await api("GET", meetingPath());
    if (state.details.state !== "active") {
      state.meetingId = "";
      return refresh();
    }
    render(state.details);
  } catch (error) {
    if (error.status === 404) {
      state.meetingId = "";
      state.details = null;
      renderNoMeeting();
    } else {
      say(`Cannot read the meeting: ${error.message}`);
    }
  }
}

function renderNoMeeting() {
  show("no-meeting", true);
  show("controls", false);
  $("meeting-id").textContent = "";
  $("roster").tBodies[0].replaceChildren();
  $("attendee-count").textContent = "";
  renderLobby([], true);
}

function render(details) {
  show("no-meeting", false);
  show("controls", true);
  $("meeting-id").textContent = details.meetingId;
  const settings = details.settings;
  $("prevent-unmuting").checked = settings.preventUnmuting;
  $("mute-on-entry").checked = settings.muteOnEntry;
  $("guest-policy").value = settings.guestPolicy;
  const spared = new Set([...document.querySelectorAll("input[name=spare]:checked")].map((b) => b.value));
  const admitted = details.attendees.filter((a) => a.admitted);
  $("roster").tBodies[0].replaceChildren(...admitted.map((a) => row(a, spared.has(a.attendeeId))));
  $("attendee-count").textContent = `(${admitted.length})`;
  renderLobby(details.lobby, details.moderatorPresent);
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(text, label, onClick, secondary) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  if (secondary) b.className = "secondary";
  b.addEventListener("click", onClick);
  return b;
}

function isModern(version) {
  const match = /^(\d+)\.(\d+)/.exec(version || "");
  return match !== null && (Number(match[1]) > 1 || (Number(match[1]) === 1 && Number(match[2]) >= 1));
}

// A phone behind the bridge says what it is in "endpoint" (sip/legacy, sip/1.1); other clients only
// have their own version.
function client(a) {
  if (a.endpoint) {
    const [kind, version] = a.endpoint.split("/");
    return isModern(version) ? `${kind} modern ${version}` : `${kind} legacy`;
  }
  return isModern(a.version) ? `modern ${a.version}` : "legacy";
}

function row(a, spared) {
  const tr = document.createElement("tr");
  tr.dataset.attendee = a.attendeeId;
  tr.dataset.name = a.displayName;
  const spare = document.createElement("input");
  spare.type = "checkbox";
  spare.name = "spare";
  spare.value = a.attendeeId;
  spare.checked = spared;
  spare.setAttribute("aria-label", `Spare ${a.displayName} from mute all`);
  const spareCell = document.createElement("td");
  spareCell.append(spare);
  const audio = a.mediaState.audio;
  const joined = a.joinedAt ? new Date(a.joinedAt).toLocaleTimeString() : "";
  const actions = document.createElement("td");
  actions.className = "actions";
  const path = `${meetingPath()}/attendees/${encodeURIComponent(a.attendeeType)}/${encodeURIComponent(a.attendeeId)}`;
  actions.append(
    button(audio ? "Mute" : "Unmute", `${audio ? "Mute" : "Unmute"} ${a.displayName}`, () =>
      act(audio ? "Mute" : "Unmute", "POST", `${path}/mediastate`, { audio: !audio })),
  );
  const hand = { attendeeId: a.attendeeId, attendeeType: a.attendeeType };
  if (a.hand === "raised") {
    actions.append(button("Accept hand", `Accept the raised hand of ${a.displayName}`, () =>
      act("Accept hand", "POST", `${meetingPath()}/attendees/raisedhands/accept`,
        { grantedPermissions: ["PERMISSION_UNMUTE"], ...hand })));
  }
  if (a.hand !== "lowered") {
    actions.append(button("Lower hand", `Lower the hand of ${a.displayName}`, () =>
      act("Lower hand", "POST", `${meetingPath()}/attendees/raisedhands/lower`,
        { rejectedPermissions: ["PERMISSION_UNMUTE"], ...hand }), true));
  }
  tr.append(
    spareCell,
    cell(a.displayName),
    cell(a.attendeeType),
    cell(client(a)),
    cell(a.role),
    cell(audio ? "unmuted" : "muted", audio ? "state-on audio" : "state-off audio"),
    cell(a.mediaState.video ? "on" : "off"),
    cell(a.hand, a.hand === "lowered" ? "hand" : "state-on hand"),
    cell(a.held ? "held" : ""),
    cell(joined),
    actions,
  );
  return tr;
}

function renderLobby(lobby, moderatorPresent) {
  const list = $("lobby-list");
  list.replaceChildren(...lobby.map((guest) => {
    const li = document.createElement("li");
    li.dataset.attendee = guest.attendeeId;
    const name = document.createElement("span");
    name.textContent = `${guest.displayName} (${guest.attendeeType})`;
    li.append(
      name,
      button("Allow", `Allow ${guest.displayName}`, () => decide("allow", [guest.attendeeId])),
      button("Deny", `Deny ${guest.displayName}`, () => decide("deny", [guest.attendeeId]), true),
    );
    return li;
  }));
  show("lobby-empty", lobby.length === 0);
  show("lobby-controls", lobby.length > 0);
  show("lobby-badge", lobby.length > 0 && !moderatorPresent);
}

async function decide(action, ids) {
  const remember = $("remember").checked;
  for (const id of ids) {
    await act(action === "allow" ? "Allow" : "Deny", "POST",
      `${meetingPath()}/attendees/meetingpermissions/${action}`, { attendeeId: id, remember });
  }
}

// -- wiring ----------------------------------------------------------------------------------------

function settingsPatch(body) {
  return act("Settings", "PATCH", `/api/spaces/${encodeURIComponent(state.space)}/settings`, body);
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", signOut);
  $("space").addEventListener("change", (event) => pickSpace(event.target.value));
  $("start-meeting").addEventListener("click", () =>
    act("Start meeting", "POST", `/api/spaces/${encodeURIComponent(state.space)}/meetings`));
  $("mute-all").addEventListener("click", () => {
    const spared = [...document.querySelectorAll("input[name=spare]:checked")].map((b) => b.value);
    act("Mute all", "POST", `${meetingPath()}/muteall`, { exclusionList: spared });
  });
  $("prevent-unmuting").addEventListener("change", (e) => settingsPatch({ preventUnmuting: e.target.checked }));
  $("mute-on-entry").addEventListener("change", (e) => settingsPatch({ muteOnEntry: e.target.checked }));
  $("guest-policy").addEventListener("change", (e) => settingsPatch({ guestPolicy: e.target.value }));
  $("end-meeting").addEventListener("click", () => {
    if (confirm("End the meeting for everyone?")) act("End meeting", "DELETE", meetingPath());
  });
  $("allow-all").addEventListener("click", () =>
    decide("allow", (state.details ? state.details.lobby : []).map((g) => g.attendeeId)));
  $("deny-all").addEventListener("click", () =>
    decide("deny", (state.details ? state.details.lobby : []).map((g) => g.attendeeId)));
  const saved = sessionStorage.getItem("spaces-token");
  if (saved) signIn(saved);
});
