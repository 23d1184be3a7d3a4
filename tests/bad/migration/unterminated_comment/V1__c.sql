SELECT 1;
/* TODO: orders
SELECT 2;
