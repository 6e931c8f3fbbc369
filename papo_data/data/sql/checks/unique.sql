-- A key that repeats: every occurrence after the first is reported.
SELECT filename, row, {field_literal} AS field,
       'duplicate key ' || key || ' (first seen in ' || first_file || ' row ' || first_row || ')' AS message
FROM (
    SELECT filename, file_row_number AS row,
           CAST(row({key}) AS VARCHAR) AS key,
           first_value(filename) OVER w AS first_file,
           first_value(file_row_number) OVER w AS first_row,
           row_number() OVER w AS occurrence
    FROM {table}
    WINDOW w AS (PARTITION BY {key} ORDER BY filename, file_row_number)
)
WHERE occurrence > 1
