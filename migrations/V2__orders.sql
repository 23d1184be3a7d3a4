-- Orders and their lines; totals are kept by the lines' trigger (R__reports.sql).
CREATE TABLE orders (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  placed_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  total DECIMAL(12,2) NOT NULL DEFAULT 0,
  KEY orders_placed (placed_at)
) ENGINE=InnoDB;

CREATE TABLE order_lines (
  order_id BIGINT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  qty INT UNSIGNED NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  PRIMARY KEY (order_id, product_id),
  KEY order_lines_product (product_id)
) ENGINE=InnoDB;
