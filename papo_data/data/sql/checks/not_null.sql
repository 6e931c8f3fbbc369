-- Non-nullable column holding nulls.
SELECT filename, file_row_number AS row, {field_literal} AS field, 'is null' AS message
FROM {table}
WHERE {field} IS NULL
