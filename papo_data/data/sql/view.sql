-- One table's view: its committed files, each schema column cast to its declared type
-- (Parquet readers drop the fixed size of vectors; the cast restores FLOAT[n]).
CREATE OR REPLACE VIEW {view} AS
SELECT * REPLACE ({casts})
FROM read_parquet({files}, union_by_name = true{raw_options});
