/**
 * What Cymbal Direct sells, for generated events: apparel and accessories under the store's own
 * labels, each with a numeric id (the data layer sends it as a string), a category path of up to
 * four levels, the variants a shopper picks from and a list price in euro cents. Prices in other
 * currencies follow from fixed rates, rounded to a price ending in .99 or .49.
 */

export interface Product {
  id: number;
  name: string;
  brand: string;
  /** Category path, broadest first: `item_category` to `item_category_4`. */
  categories: readonly string[];
  variants: readonly string[];
  /** List price in euro cents. */
  priceCents: number;
}

export type Currency = 'EUR' | 'USD' | 'GBP';

const p = (
  id: number,
  name: string,
  brand: string,
  categories: string,
  variants: string,
  euros: number,
): Product => ({
  id,
  name,
  brand,
  categories: categories.split('/'),
  variants: variants.split(','),
  priceCents: Math.round(euros * 100),
});

const SIZES = 'XS,S,M,L,XL';
const SHOES = '38,39,40,41,42,43,44,45';

export const CATALOGUE: readonly Product[] = [
  p(10231, 'Cymbal Classic Crew Tee', 'Cymbal', 'Apparel/Mens/Shirts/Tshirts', SIZES, 19.99),
  p(10232, 'Cymbal Classic V-Neck Tee', 'Cymbal', 'Apparel/Womens/Shirts/Tshirts', SIZES, 19.99),
  p(10245, 'Logo Pocket Tee', 'Cymbal', 'Apparel/Unisex/Shirts/Tshirts', 'Black,White,Navy', 14.99),
  p(10310, 'Oxford Button-Down Shirt', 'Harbor & Pine', 'Apparel/Mens/Shirts/Casual', SIZES, 49.0),
  p(10311, 'Linen Camp Shirt', 'Harbor & Pine', 'Apparel/Mens/Shirts/Casual', 'Sand,Sage', 54.0),
  p(10402, 'Merino Crew Sweater', 'Northline', 'Apparel/Mens/Knitwear/Sweaters', SIZES, 79.0),
  p(10405, 'Cable Knit Cardigan', 'Northline', 'Apparel/Womens/Knitwear/Cardigans', SIZES, 84.5),
  p(10411, 'Fleece Quarter Zip', 'Cymbal Sport', 'Apparel/Unisex/Knitwear/Fleece', SIZES, 44.99),
  p(10520, 'Heavyweight Hoodie', 'Cymbal', 'Apparel/Unisex/Sweatshirts/Hoodies', SIZES, 59.99),
  p(
    10521,
    'Zip Hoodie',
    'Cymbal',
    'Apparel/Unisex/Sweatshirts/Hoodies',
    'Grey,Black,Forest',
    64.99,
  ),
  p(10530, 'Crewneck Sweatshirt', 'Cymbal', 'Apparel/Unisex/Sweatshirts/Crewnecks', SIZES, 49.99),
  p(10610, 'Slim Chino', 'Harbor & Pine', 'Apparel/Mens/Trousers/Chinos', '30,32,34,36', 59.0),
  p(
    10615,
    'Straight Leg Jeans',
    'Harbor & Pine',
    'Apparel/Womens/Trousers/Denim',
    '26,28,30',
    69.0,
  ),
  p(10620, 'Trail Jogger', 'Cymbal Sport', 'Apparel/Unisex/Trousers/Joggers', SIZES, 39.99),
  p(10701, 'Packable Rain Jacket', 'Trailmark', 'Apparel/Unisex/Outerwear/Rain', SIZES, 89.0),
  p(10702, 'Down Puffer Jacket', 'Trailmark', 'Apparel/Womens/Outerwear/Insulated', SIZES, 149.0),
  p(10705, 'Waxed Field Jacket', 'Northline', 'Apparel/Mens/Outerwear/Jackets', SIZES, 179.0),
  p(10710, 'Softshell Vest', 'Trailmark', 'Apparel/Mens/Outerwear/Vests', SIZES, 64.0),
  p(10801, 'Running Shorts', 'Cymbal Sport', 'Apparel/Mens/Activewear/Shorts', SIZES, 29.99),
  p(10802, 'High-Rise Leggings', 'Cymbal Sport', 'Apparel/Womens/Activewear/Leggings', SIZES, 44.0),
  p(10805, 'Seamless Sports Bra', 'Cymbal Sport', 'Apparel/Womens/Activewear/Tops', SIZES, 32.0),
  p(10901, 'Kids Logo Tee', 'Cymbal Kids', 'Apparel/Kids/Shirts/Tshirts', '4Y,6Y,8Y,10Y', 12.99),
  p(10902, 'Kids Rain Jacket', 'Cymbal Kids', 'Apparel/Kids/Outerwear/Rain', '4Y,6Y,8Y', 39.99),
  p(10905, 'Kids Fleece Hoodie', 'Cymbal Kids', 'Apparel/Kids/Sweatshirts/Hoodies', '6Y,8Y', 27.5),
  p(20110, 'Everyday Sneaker', 'Cymbal', 'Footwear/Unisex/Sneakers', SHOES, 74.99),
  p(20115, 'Trail Runner', 'Trailmark', 'Footwear/Unisex/Running', SHOES, 119.0),
  p(20120, 'Canvas Slip-On', 'Harbor & Pine', 'Footwear/Womens/Casual', SHOES, 45.0),
  p(30101, 'Embroidered Logo Cap', 'Cymbal', 'Accessories/Headwear/Caps', 'Navy,Khaki,Black', 22.0),
  p(30102, 'Ribbed Beanie', 'Northline', 'Accessories/Headwear/Beanies', 'Rust,Grey,Navy', 18.0),
  p(30103, 'Bucket Hat', 'Harbor & Pine', 'Accessories/Headwear/Hats', 'Olive,Stone', 26.0),
  p(30201, 'Canvas Tote Bag', 'Cymbal', 'Accessories/Bags/Totes', 'Natural,Black', 16.5),
  p(30202, 'Roll-Top Backpack', 'Trailmark', 'Accessories/Bags/Backpacks', '20L,28L', 95.0),
  p(30203, 'Crossbody Sling', 'Cymbal Sport', 'Accessories/Bags/Slings', 'Black,Sand', 34.99),
  p(30204, 'Weekender Duffel', 'Northline', 'Accessories/Bags/Duffels', 'Tan,Black', 129.0),
  p(
    30301,
    'Insulated Water Bottle',
    'Trailmark',
    'Accessories/Drinkware/Bottles',
    '500ml,750ml',
    24.99,
  ),
  p(30302, 'Enamel Camp Mug', 'Cymbal', 'Accessories/Drinkware/Mugs', 'White,Green', 12.0),
  p(30401, 'Merino Hiking Socks', 'Trailmark', 'Accessories/Socks/Hiking', 'S,M,L', 17.99),
  p(30402, 'Everyday Socks 3-Pack', 'Cymbal', 'Accessories/Socks/Everyday', 'S,M,L', 14.99),
  p(30501, 'Leather Belt', 'Harbor & Pine', 'Accessories/Leather/Belts', '85,90,95,100', 39.0),
  p(30502, 'Card Wallet', 'Harbor & Pine', 'Accessories/Leather/Wallets', 'Brown,Black', 29.0),
  p(30601, 'Wool Scarf', 'Northline', 'Accessories/Winter/Scarves', 'Charcoal,Camel', 42.0),
  p(30602, 'Touchscreen Gloves', 'Northline', 'Accessories/Winter/Gloves', 'S/M,L/XL', 24.0),
  p(
    30701,
    'Polarised Sunglasses',
    'Cymbal Sport',
    'Accessories/Eyewear/Sunglasses',
    'Black,Tortoise',
    58.0,
  ),
];

/** Euro to currency, applied to list prices; fixed so that generated prices never drift. */
const RATES: Record<Currency, number> = { EUR: 1, USD: 1.18, GBP: 0.88 };

/** The product's price in `currency`, in cents: the converted price rounded to .49 or .99. */
export function priceIn(product: Product, currency: Currency): number {
  if (currency === 'EUR') return product.priceCents;
  const converted = product.priceCents * RATES[currency];
  const halfUnits = Math.max(1, Math.round(converted / 50));
  return halfUnits * 50 - 1;
}
