#!/usr/bin/env bash
# Records the spoken prompts the bridge plays to a phone into bridge/media/prompts/ as raw 8 kHz
# G.711: <name>.pcmu (mu-law) and <name>.pcma (A-law), each a whole number of 20 ms frames (160 bytes).
#
# Needs espeak-ng and sox, here only (the bridge reads the committed files and needs neither):
#     sudo apt-get update && sudo apt-get install -y espeak-ng sox
#
# Idempotent: every run overwrites the same files, and the same espeak-ng and sox versions give the
# same bytes (sox dithers nothing, -D; no timestamps are written). The committed files were made with
# espeak-ng 1.51 and SoX 14.4.2 (Debian 12).
set -euo pipefail

for tool in espeak-ng sox; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$0 needs $tool: sudo apt-get update && sudo apt-get install -y espeak-ng sox" >&2
        exit 1
    fi
done

out="$(cd "$(dirname "$0")/.." && pwd)/bridge/media/prompts"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

VOICE=en-us      # espeak-ng's American English voice
SPEED=150        # words per minute (espeak-ng's default is 175)
PEAK=-16         # dBFS: clearly audible on a handset, far from G.711's clipping point
LEAD=0.05        # seconds of silence kept before the speech (espeak-ng starts with ~100 ms)
FADE=0.05        # seconds of fade-out at the end
FRAME=160        # bytes in 20 ms of 8 kHz G.711

prompts=(
    "muted|You are muted."
    "unmuted|You are unmuted."
    "hand_raised|Your hand is raised."
    "hand_lowered|Your hand was lowered."
    "lobby_waiting|Waiting for a moderator to let you in."
    "meeting_ended|The meeting has ended."
    "menu_meeting_id|Please enter the meeting I D, then press pound."
    "menu_not_found|That meeting I D was not found."
    "menu_host_pin|If you are the host, enter your pin, then press pound. Otherwise, press pound."
    "menu_wrong_pin|That pin is not correct."
    "menu_goodbye|Goodbye."
)

# Appends the codec's silence byte (an octal escape, as tr reads it) until the file is whole frames.
pad_to_frames() {
    local file="$1" silence="$2" size missing
    size=$(stat -c %s "$file")
    missing=$(( (FRAME - size % FRAME) % FRAME ))
    head -c "$missing" /dev/zero | tr '\000' "$silence" >>"$file"
}

for entry in "${prompts[@]}"; do
    name="${entry%%|*}"
    text="${entry#*|}"
    espeak-ng -v "$VOICE" -s "$SPEED" -w "$work/$name.wav" "$text"
    # At espeak-ng's rate: drop the leading and trailing silence (below -50 dBFS); then resample to
    # 8 kHz mono, set the peak, fade out, and put back LEAD seconds of silence before the speech.
    # (Two passes: fade needs to know the length, which silence leaves unknown.)
    sox -D "$work/$name.wav" "$work/$name.trimmed.wav" \
        silence 1 0.005 -50d reverse silence 1 0.005 -50d reverse
    sox -D "$work/$name.trimmed.wav" -r 8000 -c 1 -b 16 "$work/$name.8k.wav" \
        rate -v 8000 gain -n "$PEAK" fade t 0 -0 "$FADE" pad "$LEAD" 0
    sox -D "$work/$name.8k.wav" -e mu-law -t raw "$out/$name.pcmu"
    sox -D "$work/$name.8k.wav" -e a-law -t raw "$out/$name.pcma"
    pad_to_frames "$out/$name.pcmu" '\377'  # 0xFF: mu-law zero
    pad_to_frames "$out/$name.pcma" '\325'  # 0xD5: A-law zero
    echo "$name: $(stat -c %s "$out/$name.pcmu") bytes per codec ($text)"
done
