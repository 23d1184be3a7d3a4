-- Product page views, for the daily statistics (clicks and sales per category).
CREATE TABLE clicks (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  product_id INT UNSIGNED NOT NULL,
  at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY clicks_at (at),
  KEY clicks_product (product_id)
) ENGINE=InnoDB;
-- Online on a live table: MariaDB adds the column instantly (`tend migrate plan` shows it).
ALTER TABLE products ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
