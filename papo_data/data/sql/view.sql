-- One table's view: its committed files, each schema column cast to its declared type
-- (Parquet readers drop the fixed size of vectors; the cast restores FLOAT[n]). Only the
-- schema's columns: LeRobot's per-episode `stats/...` columns stay in the files.
CREATE OR REPLACE VIEW {view} AS
SELECT {columns}
FROM read_parquet({files}, union_by_name = true{raw_options});
