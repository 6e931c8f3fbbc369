-- NaN or infinity in a float column or any element of a vector (a sum over a vector is
-- finite exactly when every element is). The flag is computed in a materialised CTE because
-- DuckDB prunes row groups by Parquet min/max statistics, which leave NaN out: a filter on the
-- column itself misses a NaN among otherwise equal values.
WITH flagged AS MATERIALIZED (
    SELECT filename, file_row_number AS row, isfinite({value}) AS finite
    FROM {table}
)
SELECT filename, row, {field_literal} AS field, 'is NaN or infinite' AS message
FROM flagged
WHERE NOT finite
