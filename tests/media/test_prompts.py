"""The spoken prompts: every file is there in both codecs, whole frames, and holds audible speech."""

from __future__ import annotations

import fnmatch
import math
import pathlib
import tomllib
from importlib import resources

import pytest

from bridge.media.prompts import CODECS, FRAME_BYTES, Codec, Prompt, PromptError, Prompts

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMPTS_DIR = ROOT / "bridge" / "media" / "prompts"
SUFFIXES = {".pcmu", ".pcma"}


def ulaw_to_linear(byte: int) -> int:
    """G.711 mu-law to a 16-bit sample (ITU-T G.711; the stored byte is the code inverted)."""
    code = ~byte & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


def alaw_to_linear(byte: int) -> int:
    """G.711 A-law to a 16-bit sample (the stored byte has its even bits inverted, XOR 0x55)."""
    code = byte ^ 0x55
    exponent = (code >> 4) & 0x07
    magnitude = ((code & 0x0F) << 4) + 8
    if exponent:
        magnitude = (magnitude + 0x100) << (exponent - 1)
    return magnitude if code & 0x80 else -magnitude


def decode(data: bytes, codec: Codec) -> list[int]:
    return [(ulaw_to_linear if codec == "PCMU" else alaw_to_linear)(b) for b in data]


def rms(samples: list[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def dbfs(level: float) -> float:
    return 20 * math.log10(level / 32768)


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    return Prompts.load()


def test_the_decoders_know_the_silence_bytes_and_the_extremes() -> None:
    assert ulaw_to_linear(0xFF) == 0 and ulaw_to_linear(0x7F) == 0
    assert ulaw_to_linear(0x80) == 32124 and ulaw_to_linear(0x00) == -32124
    assert alaw_to_linear(0xD5) == 8 and alaw_to_linear(0x55) == -8
    assert alaw_to_linear(0xAA) == 32256 and alaw_to_linear(0x2A) == -32256


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("prompt", list(Prompt))
def test_every_prompt_loads_as_whole_20ms_frames(
    prompts: Prompts, prompt: Prompt, codec: Codec
) -> None:
    frames = prompts.frames(prompt, codec)
    assert frames and all(len(frame) == FRAME_BYTES for frame in frames)
    assert b"".join(frames) == prompts.audio(prompt, codec)
    assert prompts.frames(prompt, codec) is frames  # cut once, at load
    # In-call prompts interrupt the meeting's audio and stay short; the menu's are instructions
    # a caller listens to before joining, and the host PIN's names two choices.
    longest = 6.0 if prompt.startswith("menu_") else 4.0
    assert 0.6 <= prompts.duration(prompt, codec) <= longest


@pytest.mark.parametrize("prompt", list(Prompt))
def test_every_prompt_is_speech_at_a_level_that_does_not_clip(
    prompts: Prompts, prompt: Prompt
) -> None:
    samples = decode(prompts.audio(prompt, "PCMU"), "PCMU")
    assert dbfs(rms(samples)) > -40  # silence is 0 (-inf dBFS); the recordings are about -33
    assert dbfs(max(abs(s) for s in samples)) < -6  # peaks were set to -16 dBFS
    frames = [samples[i : i + FRAME_BYTES] for i in range(0, len(samples), FRAME_BYTES)]
    loud = [frame for frame in frames if dbfs(max(rms(frame), 1)) > -45]
    assert len(loud) >= len(frames) / 2  # mostly speech, not silence around a click
    lead = next(i for i, sample in enumerate(samples) if sample)
    assert lead <= 0.050 * 8000  # at most 50 ms of silence before the speech


@pytest.mark.parametrize("prompt", list(Prompt))
def test_the_two_codecs_carry_the_same_recording(prompts: Prompts, prompt: Prompt) -> None:
    ulaw = decode(prompts.audio(prompt, "PCMU"), "PCMU")
    alaw = decode(prompts.audio(prompt, "PCMA"), "PCMA")
    assert len(ulaw) == len(alaw)
    difference = rms([u - a for u, a in zip(ulaw, alaw, strict=True)])
    assert difference < rms(ulaw) / 10  # both laws quantise the same 16-bit signal


def test_the_package_holds_exactly_the_prompts_files() -> None:
    on_disk = {path.name for path in PROMPTS_DIR.iterdir() if path.suffix in SUFFIXES}
    expected = {f"{prompt}.{codec.lower()}" for prompt in Prompt for codec in CODECS}
    assert on_disk == expected


def test_prompt_files_are_package_data() -> None:
    """A non-editable install (the image's) must carry the recordings next to the module."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["bridge.media.prompts"]
    for path in PROMPTS_DIR.iterdir():
        if path.suffix in SUFFIXES:
            assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), path


def copy_of_the_prompts(tmp_path: pathlib.Path) -> pathlib.Path:
    for entry in resources.files("bridge.media.prompts").iterdir():
        if pathlib.PurePath(entry.name).suffix in SUFFIXES:
            (tmp_path / entry.name).write_bytes(entry.read_bytes())
    return tmp_path


def test_prompts_load_from_an_operators_folder(tmp_path: pathlib.Path) -> None:
    folder = copy_of_the_prompts(tmp_path)
    (folder / "muted.pcmu").write_bytes(b"\xff" * FRAME_BYTES * 40)
    loaded = Prompts.load(folder)
    assert loaded.frames(Prompt.MUTED, "PCMU") == (b"\xff" * FRAME_BYTES,) * 40
    assert loaded.audio(Prompt.MUTED, "PCMA") == Prompts.load().audio(Prompt.MUTED, "PCMA")


def test_an_operators_recordings_take_the_place_of_ours_file_by_file(
    tmp_path: pathlib.Path,
) -> None:
    ours = Prompts.load()
    (tmp_path / "muted.pcma").write_bytes(b"\xd5" * FRAME_BYTES * 3)
    (tmp_path / "menu_goodbye.pcmu").write_bytes(b"\x7f" * FRAME_BYTES)
    (tmp_path / "README.txt").write_text("French prompts, recorded 2026-11")  # left alone
    (tmp_path / "old").mkdir()  # so is a folder
    loaded = Prompts.load(overrides=tmp_path)
    assert loaded.frames(Prompt.MUTED, "PCMA") == (b"\xd5" * FRAME_BYTES,) * 3
    assert loaded.audio(Prompt.MENU_GOODBYE, "PCMU") == b"\x7f" * FRAME_BYTES
    assert loaded.duration(Prompt.MUTED, "PCMA") == 0.06
    unchanged = [
        (prompt, codec)
        for prompt in Prompt
        for codec in CODECS
        if (prompt, codec) not in {(Prompt.MUTED, "PCMA"), (Prompt.MENU_GOODBYE, "PCMU")}
    ]
    assert len(unchanged) == 2 * len(Prompt) - 2
    for prompt, codec in unchanged:
        assert loaded.audio(prompt, codec) == ours.audio(prompt, codec)
    assert Prompts.load(overrides=tmp_path / "old").audio(Prompt.MUTED, "PCMA") == ours.audio(
        Prompt.MUTED, "PCMA"
    )


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("mutted.pcmu", r"mutted\.pcmu is named for no prompt; expected one of muted, unmuted"),
        (
            "muted.wav",
            r"muted\.wav: a prompt is raw 8 kHz G\.711 without a header, named "
            r"muted\.pcmu \(mu-law\) or muted\.pcma \(A-law\)",
        ),
        ("hand_raised.pcma", r"hand_raised\.pcma is 161 bytes, not a whole number of 20 ms frames"),
    ],
)
def test_an_operators_file_that_would_go_unheard_is_named(
    tmp_path: pathlib.Path, name: str, words: str
) -> None:
    (tmp_path / name).write_bytes(b"\xff" * (FRAME_BYTES + 1))
    with pytest.raises(PromptError, match=words):
        Prompts.load(overrides=tmp_path)


def test_a_missing_prompt_file_is_named(tmp_path: pathlib.Path) -> None:
    folder = copy_of_the_prompts(tmp_path)
    (folder / "hand_raised.pcma").unlink()
    with pytest.raises(PromptError, match=r"hand_raised\.pcma is missing"):
        Prompts.load(folder)


@pytest.mark.parametrize("size", [0, FRAME_BYTES * 10 + 1])
def test_a_prompt_file_of_partial_frames_is_refused(tmp_path: pathlib.Path, size: int) -> None:
    folder = copy_of_the_prompts(tmp_path)
    (folder / "meeting_ended.pcmu").write_bytes(b"\xff" * size)
    with pytest.raises(PromptError, match=r"meeting_ended\.pcmu is (empty|1601 bytes)"):
        Prompts.load(folder)


def test_prompts_built_directly_must_cover_every_prompt_and_codec() -> None:
    audio = {(prompt, codec): b"\xff" * FRAME_BYTES for prompt in Prompt for codec in CODECS}
    del audio[Prompt.UNMUTED, "PCMA"]
    with pytest.raises(PromptError, match=r"unmuted\.pcma"):
        Prompts(audio)
