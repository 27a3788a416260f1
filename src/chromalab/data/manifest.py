"""data/raw/manifest.csv: one row per stored image, the contract between download and prepare.

Columns:
- path: the image file, relative to the raw folder, POSIX (e.g. images/astronaut.png)
- source_id: the source photo's id; crops made later from one photo share it, so splits can
  keep them together
- label: class label, or empty
- width, height: the stored pixel size (before any EXIF orientation: raw stays raw)
- sha256: of the stored file
- split: empty unless the source publishes a split (e.g. "train"/"test")
- dataset: which of several folders/archives (data.path a list) the photo came from, empty when
  there is one source; prepare splits each dataset on its own and evaluation reads per dataset
"""

import csv
import io
from pathlib import Path

from chromalab.core.atomic import write_text
from chromalab.core.errors import UserError

COLUMNS = ["path", "source_id", "label", "width", "height", "sha256", "split", "dataset"]
OPTIONAL_COLUMNS = ("dataset",)  # manifests written before it existed read as one dataset
INT_COLUMNS = ("width", "height")



def to_csv(rows, columns) -> str:
    """CSV text with a header; keys missing from a row are written empty, extra keys are a bug."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_manifest(path, rows) -> None:
    write_text(path, to_csv(rows, COLUMNS))


def read_manifest(path) -> list[dict]:
    """The manifest's rows, with width and height as ints; a UserError names any problem."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found (run the download stage first)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or []) and c not in OPTIONAL_COLUMNS]
            if missing:
                raise UserError(f"{path}: not a manifest, missing column(s) {', '.join(missing)}")
            return [_parse_row(path, reader.line_num, row) for row in reader]
    except (csv.Error, UnicodeDecodeError) as err:
        raise UserError(f"{path}: malformed CSV ({err})") from None


def _parse_row(path: Path, line: int, row: dict) -> dict:
    # DictReader puts surplus fields under None and fills absent ones with None.
    if None in row or None in row.values():
        raise UserError(f"{path}, line {line}: expected {len(COLUMNS)} fields")
    for name in INT_COLUMNS:
        try:
            row[name] = int(row[name])
        except ValueError:
            raise UserError(f"{path}, line {line}: {name} is not an integer: {row[name]!r}") from None
    row.setdefault("dataset", "")
    return row
