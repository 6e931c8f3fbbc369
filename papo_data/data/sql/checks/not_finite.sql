-- NaN or infinity in a float column or any element of a vector (a sum over a vector is
-- finite exactly when every element is).
SELECT filename, file_row_number AS row, {field_literal} AS field,
       'is NaN or infinite' AS message
FROM {table}
WHERE NOT isfinite({value})
