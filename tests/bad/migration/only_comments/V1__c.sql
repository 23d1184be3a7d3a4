-- ALTER TABLE orders ADD COLUMN note TEXT;
# later
/* later */
