-- Reporting objects, replaced whenever this file changes.
CREATE OR REPLACE VIEW sales_per_category AS
  SELECT c.name AS category, DATE(o.placed_at) AS day, SUM(l.qty) AS items, SUM(l.qty * l.price) AS revenue
  FROM order_lines l
  JOIN orders o ON o.id = l.order_id
  JOIN products p ON p.id = l.product_id
  JOIN categories c ON c.id = p.category_id
  GROUP BY c.name, DATE(o.placed_at);

DELIMITER //
CREATE OR REPLACE PROCEDURE place_order(IN p_product INT UNSIGNED, IN p_qty INT UNSIGNED)
BEGIN
  INSERT INTO orders () VALUES ();
  INSERT INTO order_lines (order_id, product_id, qty, price)
    SELECT LAST_INSERT_ID(), id, p_qty, price FROM products WHERE id = p_product;
END //

DROP TRIGGER IF EXISTS order_lines_total //
CREATE TRIGGER order_lines_total AFTER INSERT ON order_lines FOR EACH ROW
BEGIN
  UPDATE orders SET total = total + NEW.qty * NEW.price WHERE id = NEW.order_id;
END //
DELIMITER ;
