-- A value outside the column's range in its schema (a probability above 1, say). The slack
-- lets float32 rounding of a computed 0 or 1 pass.
SELECT filename, file_row_number AS row, {field_literal} AS field,
       'is ' || {field} || ', outside [{low}, {high}]' AS message
FROM {table}
WHERE {field} < {low} - 1e-6 OR {field} > {high} + 1e-6
