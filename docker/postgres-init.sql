-- Prefect keeps its own schema (with generic table names) in a database of its own.
CREATE DATABASE prefect OWNER mailarchive;
