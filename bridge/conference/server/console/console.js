// The moderator console. It speaks only the public API (docs/conference-api.md): REST for state and
// actions, Socket.IO (namespace /chat) for live events. After every event it re-reads the meeting, so
// what it shows is always the server's state, never a guess built from events. Talking events are
// the exception: they change no state, so they only move the speaking dots.
//
// "Join audio" puts this page in the meeting's audio (docs/mixer.md, Browsers): a WebRTC
// PeerConnection whose offer, answer and ICE candidates go over this page's own Socket.IO
// connection; the server joins it to the meeting's mixer and keeps the mixer's handle, so a
// moderator's mute of this page's attendee holds whatever the page does.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_EVENTS = 200;
const ACK_TIMEOUT = 10000;
const TALKING = "app.event.attendee.talking";
const state = {
  token: "", space: "", meetingId: "", details: null, socket: null, refresh: null,
  talking: new Set(),
};
// This page's own audio: its PeerConnection, microphone, and attendee once the server answered.
const pageAudio = { pc: null, stream: null, attendeeId: "", pending: [], busy: false };

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
  if (pageAudio.pc) await leaveAudio();
  state.space = space;
  state.meetingId = "";
  state.talking.clear();
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
    // The server ends the audio of a socket that went: so does the page.
    if (pageAudio.pc) closeAudio("Audio ended: the connection to the server was lost.");
  });
  socket.on("connect_error", () => { $("connection").textContent = "cannot connect"; });
  socket.on("MEDIA_SESSION_RESPONSE", (event) => {
    if (event.topicId !== state.space) return;
    if (event.category === TALKING) {
      setTalking(event.content.attendeeId, event.content.talking);
      return;
    }
    logEvent(event);
    scheduleRefresh();
  });
  socket.on("AUDIO_CANDIDATE", (message) => {
    if (pageAudio.pc && message.attendeeId === pageAudio.attendeeId) {
      pageAudio.pc.addIceCandidate(message.candidate).catch(() => {});
    }
  });
  socket.on("AUDIO_ENDED", (message) => {
    if (pageAudio.pc && message.attendeeId === pageAudio.attendeeId) {
      closeAudio(`Audio ended: ${message.reason}.`);
    }
  });
}

function subscribe() {
  if (state.socket && state.socket.connected && state.space) {
    const space = state.space;
    state.socket.emit("SUBSCRIBE_CHANNEL", { channel: { type: "topic", _id: space } });
    // Talking events come only when that changes: ask who talks already.
    request("TALKERS", { topicId: space }).then((ack) => {
      if (state.space !== space) return;
      state.talking = new Set(ack.talking);
      for (const id of ack.talking) setTalking(id, true);
    }).catch(() => {});
  }
}

// A socket request with an acknowledgement: its ack, or an Error with the server's reason.
async function request(event, body) {
  const ack = await state.socket.timeout(ACK_TIMEOUT).emitWithAck(event, body);
  if (!ack || !ack.ok) {
    const error = new Error(ack && ack.message ? ack.message : "no answer");
    error.code = ack && ack.error;
    throw error;
  }
  return ack;
}

function setTalking(attendeeId, talking) {
  if (talking) state.talking.add(attendeeId); else state.talking.delete(attendeeId);
  const row = document.querySelector(`#roster tr[data-attendee="${CSS.escape(attendeeId)}"]`);
  if (row) paintDot(row.querySelector(".dot"), talking);
}

function paintDot(dot, talking) {
  dot.classList.toggle("talking", talking);
  dot.setAttribute("aria-label", talking ? "speaking" : "silent");
  dot.title = talking ? "speaking" : "";
}

// -- the meeting's audio in this page --------------------------------------------------------------

function audioStatus(text) { $("audio-status").textContent = text; }

function showAudioButtons() {
  show("join-audio", !pageAudio.pc);
  show("leave-audio", Boolean(pageAudio.pc));
  $("join-audio").disabled = pageAudio.busy;
}

async function joinAudio() {
  if (pageAudio.pc || pageAudio.busy || !state.meetingId) return;
  pageAudio.busy = true;
  showAudioButtons();
  audioStatus("Asking for the microphone…");
  try {
    pageAudio.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  } catch (error) {
    pageAudio.busy = false;
    showAudioButtons();
    audioStatus(`No microphone: ${error.message}`);
    return;
  }
  // No STUN or TURN: the server's mixer is on a reachable address (docs/mixer.md, Browsers).
  const pc = new RTCPeerConnection();
  pageAudio.pc = pc;
  pageAudio.pending = [];
  showAudioButtons();
  for (const track of pageAudio.stream.getAudioTracks()) pc.addTrack(track, pageAudio.stream);
  pc.addEventListener("track", (event) => {
    $("meeting-audio").srcObject = event.streams[0] || new MediaStream([event.track]);
  });
  pc.addEventListener("icecandidate", (event) => sendCandidate(event.candidate));
  pc.addEventListener("connectionstatechange", () => {
    if (pageAudio.pc !== pc) return;
    if (pc.connectionState === "connected") audioStatus("In the meeting's audio.");
    if (pc.connectionState === "disconnected") audioStatus("Audio interrupted, reconnecting…");
    if (pc.connectionState === "failed") pc.restartIce();  // renegotiated below
  });
  pc.addEventListener("negotiationneeded", () => renegotiate(pc));
  try {
    audioStatus("Connecting…");
    await pc.setLocalDescription(await pc.createOffer());
    const ack = await request("AUDIO_JOIN", {
      topicId: state.space,
      meetingId: state.meetingId,
      offer: { type: "offer", sdp: pc.localDescription.sdp },
    });
    if (pageAudio.pc !== pc) {  // left while the server answered: its attendee goes too
      request("AUDIO_LEAVE", { attendeeId: ack.attendeeId }).catch(() => {});
      return;
    }
    pageAudio.attendeeId = ack.attendeeId;
    await pc.setRemoteDescription(ack.answer);
    for (const json of pageAudio.pending) passCandidate(json);
    pageAudio.pending = [];
    scheduleRefresh();
  } catch (error) {
    if (pageAudio.pc !== pc) return;
    const attendeeId = pageAudio.attendeeId;  // answered, but the answer did not apply
    closeAudio(`Cannot join audio: ${error.code ? error.code + " — " : ""}${error.message}`);
    if (attendeeId) request("AUDIO_LEAVE", { attendeeId }).catch(() => {});
  } finally {
    pageAudio.busy = false;
    showAudioButtons();
  }
}

// Before the server has answered, the page has no attendee to send candidates for: kept until then.
function sendCandidate(candidate) {
  const json = candidate ? candidate.toJSON() : null;
  if (pageAudio.attendeeId) passCandidate(json); else pageAudio.pending.push(json);
}

function passCandidate(json) {
  request("AUDIO_CANDIDATE", { attendeeId: pageAudio.attendeeId, candidate: json }).catch(() => {});
}

// A new offer on the same PeerConnection (an ICE restart): the server passes only the offer on,
// so nothing here can change what the moderator decided about this page's microphone.
async function renegotiate(pc) {
  if (pageAudio.pc !== pc || !pageAudio.attendeeId || pc.signalingState !== "stable") return;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    const ack = await request("AUDIO_RENEGOTIATE", {
      attendeeId: pageAudio.attendeeId,
      offer: { type: "offer", sdp: pc.localDescription.sdp },
    });
    if (pageAudio.pc === pc) await pc.setRemoteDescription(ack.answer);
  } catch (error) {
    if (pageAudio.pc === pc) closeAudio(`Audio ended: ${error.message}`);
  }
}

async function leaveAudio() {
  const attendeeId = pageAudio.attendeeId;
  closeAudio("Left the meeting's audio.");
  if (attendeeId) await request("AUDIO_LEAVE", { attendeeId }).catch(() => {});
  scheduleRefresh();
}

function closeAudio(text) {
  if (pageAudio.pc) pageAudio.pc.close();
  if (pageAudio.stream) for (const track of pageAudio.stream.getTracks()) track.stop();
  $("meeting-audio").srcObject = null;
  pageAudio.pc = null;
  pageAudio.stream = null;
  pageAudio.attendeeId = "";
  pageAudio.pending = [];
  audioStatus(text);
  showAudioButtons();
  scheduleRefresh();
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
  show("audio-controls", false);
  $("meeting-id").textContent = "";
  $("roster").tBodies[0].replaceChildren();
  $("attendee-count").textContent = "";
  renderLobby([], true);
}

function render(details) {
  show("no-meeting", false);
  show("controls", true);
  show("audio-controls", true);
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
  if (a.attendeeId === pageAudio.attendeeId) tr.className = "self";
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.setAttribute("role", "img");
  paintDot(dot, state.talking.has(a.attendeeId));
  const dotCell = document.createElement("td");
  dotCell.className = "speaking";
  dotCell.append(dot);
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
    dotCell,
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
  $("join-audio").addEventListener("click", joinAudio);
  $("leave-audio").addEventListener("click", leaveAudio);
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
