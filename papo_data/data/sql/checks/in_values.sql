-- A value the column's schema does not list (an arm other than factual, alternative, replay).
SELECT filename, file_row_number AS row, {field_literal} AS field,
       'is ' || {field} || ', expected one of ' || {values_literal} AS message
FROM {table}
WHERE {field} NOT IN ({values})
