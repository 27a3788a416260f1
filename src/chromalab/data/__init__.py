"""Raw data: where photos come from (sources) and how data/raw describes them (manifest)."""
