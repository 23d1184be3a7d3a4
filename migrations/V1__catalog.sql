-- The shop's catalog: categories and the products in them.
CREATE TABLE categories (
  id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  UNIQUE KEY categories_name (name)
) ENGINE=InnoDB;

CREATE TABLE products (
  id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  category_id INT UNSIGNED NOT NULL,
  sku VARCHAR(32) NOT NULL,
  name VARCHAR(200) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  UNIQUE KEY products_sku (sku),
  KEY products_category (category_id),
  CONSTRAINT products_category_fk FOREIGN KEY (category_id) REFERENCES categories (id)
) ENGINE=InnoDB;

INSERT INTO categories (name) VALUES ('tea'), ('coffee'), ('accessories');
INSERT INTO products (category_id, sku, name, price) VALUES
  (1, 'TEA-001', 'Sencha, 100 g', 6.90),
  (1, 'TEA-002', 'Assam, 250 g', 8.50),
  (2, 'COF-001', 'Arabica beans, 1 kg', 19.90),
  (3, 'ACC-001', 'Tea pot, 1 l', 24.00);
