"""The data: where photos come from (sources, public, cifar10; fetch and archives download them
checked), how data/raw describes them (manifest), and the stages that build data/: download,
prepare (Lab arrays by split) and palette (k-means colours, Zhang's gamut)."""
