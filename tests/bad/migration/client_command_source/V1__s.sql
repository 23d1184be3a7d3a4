SOURCE other.sql;
