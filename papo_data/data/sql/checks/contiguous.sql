-- A numbering column that must run 0, 1, 2, ... without gaps (per partition if given).
-- Repeats are the unique-key check's business, so only starts and gaps are reported here.
SELECT filename, row, {field_literal} AS field,
       CASE WHEN previous IS NULL THEN 'is ' || value || ', numbering must start at 0'
            ELSE 'is ' || value || ', expected ' || (previous + 1) || ' (numbering has a gap)'
       END AS message
FROM (
    SELECT filename, file_row_number AS row, {field} AS value,
           lag({field}) OVER (PARTITION BY {partition} ORDER BY {field}) AS previous
    FROM {table}
)
WHERE (previous IS NULL AND value <> 0) OR value - previous > 1
