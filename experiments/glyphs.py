"""The glyph data set: a Hangul syllable is an identity, its rendering in one typeface is one photograph of it.

`load_glyphs(params)` finds the faces of seven Debian font packages at their known paths (FACES), keeps the
faces that draw every syllable used (no .notdef box, no blank bitmap), drops faces whose renderings duplicate an
earlier face's (each Noto CJK collection repeats the same Hangul in its regional faces), renders every
(syllable, face) image once, deterministically, and caches the result under a content hash of the font files,
the package versions, Pillow/FreeType and the parameters. A missing package is an error naming it.

Splits are disjoint by syllable (training vs unseen) and by typeface family (training vs held-out). A family is
a design lineage (NanumSquare, NanumSquare_ac and NanumSquareRound are one; the Yet-Hangul faces belong to the
family they extend), not a file name.

Licenses (checked in /usr/share/doc/<package>/copyright): Noto CJK and Nanum are SIL OFL 1.1; Baekmuk is
MIT-like and asks for BAEKMUK_ACKNOWLEDGMENT in supporting documentation; the Un fonts are GPL-2 without a
font exception. Renderings are made at build time and never committed; `ofl_only=True` keeps the OFL faces.
"""

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import subprocess
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont, features

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "glyphs"
FONT_ROOT = Path("/usr/share/fonts")
BAEKMUK_ACKNOWLEDGMENT = (
    "Baekmuk Batang, Baekmuk Dotum, Baekmuk Gulim, and Baekmuk Headline are registered trademarks owned by "
    "Kim Jeong-Hwan."
)
LICENSES = {
    "fonts-noto-cjk": "OFL-1.1",
    "fonts-noto-cjk-extra": "OFL-1.1",
    "fonts-nanum": "OFL-1.1",
    "fonts-nanum-extra": "OFL-1.1",
    "fonts-unfonts-core": "GPL-2",
    "fonts-unfonts-extra": "GPL-2",
    "fonts-baekmuk": "Baekmuk (MIT-like)",
}
PACKAGES = tuple(LICENSES)


def _faces():
    """(file under /usr/share/fonts, package, family) for every face file used."""
    noto = "opentype/noto/Noto{}CJK-{}.ttc"
    rows = [(noto.format("Sans", w), "fonts-noto-cjk", "noto-sans") for w in ("Regular", "Bold")]
    rows += [(noto.format("Serif", w), "fonts-noto-cjk", "noto-serif") for w in ("Regular", "Bold")]
    rows += [
        (noto.format("Sans", w), "fonts-noto-cjk-extra", "noto-sans")
        for w in ("Thin", "Light", "DemiLight", "Medium", "Black")
    ]
    rows += [
        (noto.format("Serif", w), "fonts-noto-cjk-extra", "noto-serif")
        for w in ("ExtraLight", "Light", "Medium", "SemiBold", "Black")
    ]
    nanum = {
        "fonts-nanum": {
            "nanum-barungothic": ["NanumBarunGothic", "NanumBarunGothicBold"],
            "nanum-gothic": ["NanumGothic", "NanumGothicBold", "NanumGothicCoding", "NanumGothicCodingBold"],
            "nanum-myeongjo": ["NanumMyeongjo", "NanumMyeongjoBold"],
            "nanum-square": ["NanumSquareB", "NanumSquareR", "NanumSquareRoundB", "NanumSquareRoundR"],
        },
        "fonts-nanum-extra": {
            "nanum-barungothic": [
                "NanumBarunGothic-YetHangul",
                "NanumBarunGothicLight",
                "NanumBarunGothicUltraLight",
            ],
            "nanum-barunpen": ["NanumBarunpenB", "NanumBarunpenR"],
            "nanum-brush": ["NanumBrush"],
            "nanum-gothic": ["NanumGothicEcoR", "NanumGothicExtraBold", "NanumGothicLight"],
            "nanum-myeongjo": ["NanumMyeongjo-YetHangul", "NanumMyeongjoEcoR", "NanumMyeongjoExtraBold"],
            "nanum-pen": ["NanumPen"],
            "nanum-square": [
                "NanumSquareEB",
                "NanumSquareL",
                "NanumSquareRoundEB",
                "NanumSquareRoundL",
                "NanumSquare_acB",
                "NanumSquare_acEB",
                "NanumSquare_acL",
                "NanumSquare_acR",
            ],
        },
        "fonts-unfonts-core": {
            "un-batang": ["UnBatang", "UnBatangBold"],
            "un-dinaru": ["UnDinaru", "UnDinaruBold", "UnDinaruLight"],
            "un-dotum": ["UnDotum", "UnDotumBold"],
            "un-graphic": ["UnGraphic", "UnGraphicBold"],
            "un-gungseo": ["UnGungseo"],
            "un-pilgi": ["UnPilgi", "UnPilgiBold"],
        },
        "fonts-unfonts-extra": {
            "un-batang": ["UnJamoBatang"],
            "un-dotum": ["UnJamoDotum"],
            "un-jamonovel": ["UnJamoNovel"],
            "un-jamosora": ["UnJamoSora"],
            "un-pen": ["UnPen", "UnPenheulim"],
            "un-pilgi": ["UnPilgia"],
            "un-shinmun": ["UnShinmun"],
            "un-taza": ["UnTaza"],
            "un-vada": ["UnVada"],
            "un-yetgul": ["UnYetgul"],
        },
        "fonts-baekmuk": {
            "baekmuk-batang": ["batang"],
            "baekmuk-dotum": ["dotum"],
            "baekmuk-gulim": ["gulim"],
            "baekmuk-headline": ["hline"],
        },
    }
    folders = {
        "fonts-nanum": "nanum",
        "fonts-nanum-extra": "nanum",
        "fonts-unfonts-core": "unfonts-core",
        "fonts-unfonts-extra": "unfonts-extra",
        "fonts-baekmuk": "baekmuk",
    }
    for package, families in nanum.items():
        for family, names in families.items():
            rows += [(f"truetype/{folders[package]}/{n}.ttf", package, family) for n in names]
    return rows


FACES = _faces()
# Held-out families: eight designs with no relative among the training families (and three of them OFL).
HELD_OUT_FAMILIES = (
    "nanum-myeongjo",
    "nanum-square",
    "nanum-brush",
    "un-pilgi",
    "un-shinmun",
    "un-vada",
    "un-gungseo",
    "baekmuk-headline",
)
SPARE_SYLLABLES, MAX_MISSING = 20, 5
DEFAULTS = {
    "size": 24,  # pixels of a square image
    "oversample": 2,  # rendered at size x oversample, then box-filtered down
    "em": 0.8,  # font size as a fraction of the image side
    "train_syllables": 1500,
    "unseen_syllables": 400,
    "split_seed": 0,
    "ofl_only": False,
}


def ks_x_1001_syllables() -> list:
    """The 2,350 precomposed Hangul syllables of KS X 1001, in code order."""
    return [bytes([a, b]).decode("euc_kr") for a in range(0xB0, 0xC9) for b in range(0xA1, 0xFF)]


class MissingFontPackage(RuntimeError):
    pass


def installed_faces(ofl_only: bool = False) -> list:
    """[(path, package, family)] of the face files, or an error naming each package that is not installed."""
    missing = sorted({pkg for rel, pkg, _ in FACES if not (FONT_ROOT / rel).is_file()})
    if missing:
        raise MissingFontPackage(
            f"the glyph experiments need the font package(s) {', '.join(missing)}: "
            f"apt-get install --no-install-recommends {' '.join(missing)}"
        )
    return [(FONT_ROOT / rel, pkg, fam) for rel, pkg, fam in FACES if not ofl_only or LICENSES[pkg] == "OFL-1.1"]


def package_versions() -> dict:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Version}\n", *PACKAGES], capture_output=True, text=True, check=False
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def render_face(path: Path, index: int, chars, params: dict) -> np.ndarray:
    """uint8 images (len(chars), size, size) of `chars` in one face, each centered on its ink box."""
    big = params["size"] * params["oversample"]
    font = ImageFont.truetype(str(path), size=round(big * params["em"]), index=index)
    out = np.zeros((len(chars), params["size"], params["size"]), np.uint8)
    for n, ch in enumerate(chars):
        canvas = Image.new("L", (2 * big, 2 * big))
        ImageDraw.Draw(canvas).text((big, big), ch, font=font, fill=255, anchor="mm")
        box = canvas.getbbox()
        if box is None:  # blank: nothing drawn
            continue
        glyph = canvas.crop(box)
        centered = Image.new("L", (big, big))
        centered.paste(glyph, ((big - glyph.width) // 2, (big - glyph.height) // 2))
        out[n] = np.asarray(centered.resize((params["size"],) * 2, Image.Resampling.BOX))
    return out


def missing_glyphs(face: np.ndarray, notdef: np.ndarray) -> np.ndarray:
    """Indices of the images in `face` that are blank or are the face's .notdef box."""
    blank = face.reshape(len(face), -1).max(axis=1) == 0
    return np.flatnonzero(blank | (face == notdef).all(axis=(1, 2)))


def face_count(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(12)
    return int.from_bytes(head[8:12], "big") if head[:4] == b"ttcf" else 1


def fingerprint(params: dict) -> dict:
    """Everything the renderings depend on: parameters, font file hashes, package and library versions."""
    faces = installed_faces(params["ofl_only"])
    files = {}
    for path, _, _ in faces:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
        files[str(path.relative_to(FONT_ROOT))] = h.hexdigest()[:16]
    return {
        "params": params,
        "files": files,
        "packages": package_versions(),
        "pillow": PIL.__version__,
        "freetype": features.version("freetype2"),
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],  # this file renders them
    }


def _probe(job):
    path, index, chars, params = job
    return hashlib.sha256(render_face(path, index, chars, params).tobytes()).hexdigest()


def _render(job):
    path, index, chars, params = job
    face = render_face(path, index, chars, params)
    return face, set(missing_glyphs(face, render_face(path, index, ["\U0010fffd"], params)[0]).tolist())


def _build(params: dict, workers: int = 2) -> dict:
    """Render, check coverage and deduplicate (the slow part, cached by load_glyphs), faces in parallel."""
    syllables = ks_x_1001_syllables()
    order = np.random.default_rng(params["split_seed"]).permutation(len(syllables))
    n_train, n_unseen = params["train_syllables"], params["unseen_syllables"]
    # A few spare syllables: a face that misses one or two (two Baekmuk faces draw 쏀 blank) costs those
    # syllables, not the face; a face that misses more than MAX_MISSING is dropped.
    candidates = [syllables[i] for i in order[: n_train + n_unseen + SPARE_SYLLABLES]]
    faces = [
        (path, index, package, family, f"{path.stem}#{index}" if face_count(path) > 1 else path.stem)
        for path, package, family in installed_faces(params["ofl_only"])
        for index in range(face_count(path))
    ]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        probes = list(pool.map(_probe, [(f[0], f[1], candidates[:48], params) for f in faces], chunksize=4))
        first, dropped = {}, {}
        for face, key in zip(faces, probes, strict=True):
            if key in first:  # the same drawings as an earlier face
                dropped[face[4]] = f"duplicates {first[key][4]}"
            else:
                first[key] = face
        unique = list(first.values())
        rendered = list(pool.map(_render, [(f[0], f[1], candidates, params) for f in unique]))
    images, names, families, packages, missing = [], [], [], [], set()
    for (_, _, package, family, name), (face, bad) in zip(unique, rendered, strict=True):
        if len(bad) > MAX_MISSING:
            dropped[name] = f"does not draw {len(bad)} syllables"
            continue
        missing |= bad
        images.append(face)
        names.append(name)
        families.append(family)
        packages.append(package)
    keep = [i for i in range(len(candidates)) if i not in missing][: n_train + n_unseen]
    if len(keep) < n_train + n_unseen:
        raise ValueError(f"only {len(keep)} syllables are drawn by every face; asked for {n_train + n_unseen}")
    used = [candidates[i] for i in keep]
    images = [face[keep] for face in images]
    return {
        "images": np.stack(images),  # (faces, syllables, size, size) uint8
        "syllables": used,
        "n_train": n_train,
        "faces": names,
        "families": families,
        "packages": packages,
        "dropped": dropped,
        "missing_syllables": "".join(candidates[i] for i in sorted(missing)),
    }


def load_glyphs(params: dict | None = None, cache: Path | None = None, progress=print) -> dict:
    """The rendered data set and its splits, from the cache when its fingerprint matches."""
    params = {**DEFAULTS, **(params or {})}
    if set(params) != set(DEFAULTS):
        raise ValueError(f"unknown glyph parameters: {sorted(set(params) - set(DEFAULTS))}")
    cache = cache or CACHE
    fp = fingerprint(params)
    key = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:20]
    path = cache / f"glyphs-{key}.npz"
    data = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                data = {**meta, "images": z["images"]}
            if hashlib.sha256(data["images"].tobytes()).hexdigest() != meta["images_sha256"]:
                raise ValueError("image hash mismatch")
        except Exception as error:  # a corrupt or truncated entry is rebuilt, never used
            progress(f"glyphs: cache entry {path.name} is unreadable ({error}); rendering again")
            data = None
    if data is None:
        progress("glyphs: rendering every face (cached afterwards) ...")
        data = _build(params)
        meta = {k: v for k, v in data.items() if k != "images"}
        meta["images_sha256"] = hashlib.sha256(data["images"].tobytes()).hexdigest()
        data["images_sha256"] = meta["images_sha256"]
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # parallel builders never share one
        np.savez(tmp, images=data["images"], meta=np.array(json.dumps(meta)))
        tmp.replace(path)
    data["fingerprint"] = {
        "key": key,
        "faces": data["faces"],
        "packages": fp["packages"],
        "pillow": fp["pillow"],
        "freetype": fp["freetype"],
        "params": params,
    }
    return with_splits(data)


def with_splits(data: dict) -> dict:
    """Index arrays of the splits: syllables (train / unseen) x faces (training / held-out families)."""
    families = np.array(data["families"])
    held = np.isin(families, HELD_OUT_FAMILIES)
    data["train_faces"], data["held_faces"] = np.flatnonzero(~held), np.flatnonzero(held)
    data["train_syl"] = np.arange(data["n_train"])
    data["unseen_syl"] = np.arange(data["n_train"], len(data["syllables"]))
    return data


def pixels(data: dict, faces, syllables) -> tuple:
    """float32 images in [0, 1] (N, 1, size, size) and their syllable labels, face-major order."""
    faces, syllables = np.asarray(faces), np.asarray(syllables)
    x = data["images"][faces[:, None], syllables[None, :]].reshape(-1, 1, *data["images"].shape[2:])
    y = np.tile(syllables, len(faces))
    return x.astype(np.float32) / 255.0, y
