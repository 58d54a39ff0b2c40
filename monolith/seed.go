package monolith

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/customers"
	"github.com/stranglerkit/strangler/monolith/inventory"
)

// seedEpoch is the creation time of the first seeded row. Seeding uses a
// clock that starts here and ticks a second per change, so that two seeded
// databases are identical, timestamps included.
var seedEpoch = time.Date(2026, time.January, 5, 8, 0, 0, 0, time.UTC)

type seedProduct struct {
	sku, name, description string
	priceCents             int64
	active                 bool
}

// seedProducts is a speciality coffee and tea shop's range: 50 products, two
// of them discontinued (inactive), all priced in EUR.
var seedProducts = []seedProduct{
	{"COF-ETH-250", "Ethiopia Yirgacheffe beans 250 g", "Washed, floral and citrus; light roast.", 1290, true},
	{"COF-ETH-1K", "Ethiopia Yirgacheffe beans 1 kg", "Washed, floral and citrus; light roast.", 4290, true},
	{"COF-COL-250", "Colombia Huila beans 250 g", "Caramel and red apple; medium roast.", 1150, true},
	{"COF-COL-1K", "Colombia Huila beans 1 kg", "Caramel and red apple; medium roast.", 3890, true},
	{"COF-BRA-250", "Brazil Cerrado beans 250 g", "Chocolate and nuts; espresso roast.", 990, true},
	{"COF-BRA-1K", "Brazil Cerrado beans 1 kg", "Chocolate and nuts; espresso roast.", 3290, true},
	{"COF-KEN-250", "Kenya Nyeri AA beans 250 g", "Blackcurrant and grapefruit; light roast.", 1490, true},
	{"COF-GUA-250", "Guatemala Antigua beans 250 g", "Cocoa and spice; medium roast.", 1190, true},
	{"COF-DEC-250", "Swiss Water decaf beans 250 g", "Milk chocolate; medium roast, decaffeinated.", 1250, true},
	{"COF-HOUSE-1K", "House espresso blend 1 kg", "Brazil and Guatemala; dark roast.", 2990, true},
	{"TEA-SEN-100", "Japanese sencha 100 g", "Steamed green tea, grassy and sweet.", 1450, true},
	{"TEA-GEN-100", "Genmaicha 100 g", "Green tea with toasted rice.", 990, true},
	{"TEA-DAR-100", "Darjeeling first flush 100 g", "Muscatel, bright and light.", 1890, true},
	{"TEA-ASS-250", "Assam breakfast tea 250 g", "Malty black tea for milk.", 1190, true},
	{"TEA-EAR-100", "Earl Grey 100 g", "Black tea with bergamot oil.", 890, true},
	{"TEA-OOL-100", "Tieguanyin oolong 100 g", "Orchid notes, rolled leaves.", 2190, true},
	{"TEA-ROO-100", "Rooibos 100 g", "Caffeine-free, honey and vanilla.", 790, true},
	{"TEA-MAT-030", "Ceremonial matcha 30 g", "Stone-ground, for whisking.", 2490, true},
	{"TEA-CHA-250", "Masala chai blend 250 g", "Assam with cardamom, ginger and cinnamon.", 1090, true},
	{"TEA-PEP-050", "Peppermint leaves 50 g", "Whole leaf herbal infusion.", 590, false},
	{"BRW-V60-02", "Pour-over dripper size 02", "Ceramic cone dripper, white.", 2490, true},
	{"BRW-FIL-100", "Paper filters size 02, 100 pcs", "Bleached cone filters.", 590, true},
	{"BRW-FRE-08", "French press 8 cups", "Borosilicate glass, steel frame, 1 l.", 3490, true},
	{"BRW-AER-01", "Immersion press", "Compact press for one cup, travel friendly.", 3990, true},
	{"BRW-MOK-06", "Stovetop espresso pot 6 cups", "Aluminium, for gas and electric hobs.", 2990, true},
	{"BRW-KET-10", "Gooseneck kettle 1 l", "Stainless steel, thermometer in the lid.", 5490, true},
	{"BRW-GRN-01", "Hand grinder, conical burr", "Stepped adjustment, 30 g hopper.", 6990, true},
	{"BRW-GRN-02", "Electric burr grinder", "40 settings from espresso to cold brew.", 14900, true},
	{"BRW-SCA-01", "Brewing scale with timer", "0.1 g resolution, 2 kg capacity.", 3990, true},
	{"BRW-CLD-15", "Cold brew bottle 1.5 l", "Glass bottle with mesh filter.", 2790, true},
	{"MUG-STN-35", "Stoneware mug 350 ml, sand", "Hand-glazed, dishwasher safe.", 1690, true},
	{"MUG-STN-35B", "Stoneware mug 350 ml, slate", "Hand-glazed, dishwasher safe.", 1690, true},
	{"MUG-ESP-2", "Espresso cups, set of 2", "Porcelain cups with saucers, 80 ml.", 1990, true},
	{"MUG-CAP-2", "Cappuccino cups, set of 2", "Porcelain cups with saucers, 180 ml.", 2290, true},
	{"MUG-GLS-2", "Double-wall glasses, set of 2", "Borosilicate, 250 ml.", 2490, true},
	{"MUG-TRV-40", "Travel mug 400 ml", "Vacuum insulated, leak-proof lid.", 2690, true},
	{"MUG-TEA-06", "Teapot 600 ml with infuser", "Cast iron, enamelled inside.", 4490, true},
	{"MUG-CHW-2", "Tea bowls, set of 2", "Stoneware chawan for matcha.", 2990, true},
	{"MUG-LOGO-1", "Shop logo mug (old logo)", "The mug with the 2019 logo.", 990, false},
	{"MUG-CUP-4", "Tumblers, set of 4", "Recycled glass, 200 ml.", 1990, true},
	{"KIT-WHK-01", "Bamboo matcha whisk", "100 prongs, with holder.", 1590, true},
	{"KIT-CAN-05", "Airtight coffee canister 500 g", "Steel with one-way valve.", 2290, true},
	{"KIT-CAN-02", "Tea caddy 200 g", "Tin with inner lid.", 1290, true},
	{"KIT-MLK-01", "Milk frother", "Handheld, battery powered.", 1490, true},
	{"KIT-JUG-35", "Milk jug 350 ml", "Steel pitcher for latte art.", 1790, true},
	{"KIT-TMP-58", "Espresso tamper 58 mm", "Walnut handle, flat base.", 2990, true},
	{"KIT-KNK-01", "Knock box", "For spent espresso pucks.", 2490, true},
	{"KIT-CLN-01", "Descaler, 4 doses", "Citric acid based.", 890, true},
	{"KIT-BRS-01", "Grinder brush", "Natural bristles.", 690, true},
	{"KIT-GFT-25", "Gift box", "Holds two bags and a mug.", 490, true},
}

type seedCustomer struct {
	name, email                             string
	line1, line2, postalCode, city, country string
}

// seedCustomers are 20 customers across the shop's markets.
var seedCustomers = []seedCustomer{
	{"Anna de Vries", "anna.devries@example.nl", "Prinsengracht 263", "", "1016 GV", "Amsterdam", "NL"},
	{"Lukas Schmidt", "lukas.schmidt@example.de", "Oranienstrasse 25", "2. OG", "10999", "Berlin", "DE"},
	{"Sofia Garcia", "sofia.garcia@example.es", "Calle de Atocha 34", "", "28012", "Madrid", "ES"},
	{"Emma Janssens", "emma.janssens@example.be", "Meir 50", "", "2000", "Antwerpen", "BE"},
	{"Louis Martin", "louis.martin@example.fr", "12 rue Oberkampf", "Bat. B", "75011", "Paris", "FR"},
	{"Mia Gruber", "mia.gruber@example.at", "Neubaugasse 7", "", "1070", "Wien", "AT"},
	{"Noah Bakker", "noah.bakker@example.nl", "Oudegracht 120", "", "3511 AX", "Utrecht", "NL"},
	{"Lena Fischer", "lena.fischer@example.de", "Schanzenstrasse 9", "", "20357", "Hamburg", "DE"},
	{"Marco Rossi", "marco.rossi@example.it", "Via Tortona 31", "", "20144", "Milano", "IT"},
	{"Julia Nowak", "julia.nowak@example.pl", "ul. Mokotowska 48", "m. 5", "00-543", "Warszawa", "PL"},
	{"Oscar Lindqvist", "oscar.lindqvist@example.se", "Hornsgatan 66", "", "118 21", "Stockholm", "SE"},
	{"Freya Jensen", "freya.jensen@example.dk", "Jaegersborggade 14", "", "2200", "Kobenhavn", "DK"},
	{"Daan Visser", "daan.visser@example.nl", "Witte de Withstraat 80", "", "3012 BR", "Rotterdam", "NL"},
	{"Clara Weber", "clara.weber@example.de", "Maximilianstrasse 3", "", "80539", "Muenchen", "DE"},
	{"Hugo Dubois", "hugo.dubois@example.fr", "8 quai Saint-Vincent", "", "69001", "Lyon", "FR"},
	{"Ines Ferreira", "ines.ferreira@example.pt", "Rua Augusta 100", "3 esq.", "1100-053", "Lisboa", "PT"},
	{"Elias Huber", "elias.huber@example.ch", "Langstrasse 120", "", "8004", "Zuerich", "CH"},
	{"Sara Peeters", "sara.peeters@example.be", "Veldstraat 22", "", "9000", "Gent", "BE"},
	{"Tom Mueller", "tom.mueller@example.de", "Ehrenstrasse 44", "", "50672", "Koeln", "DE"},
	{"Eva Smit", "eva.smit@example.nl", "Grote Markt 5", "", "9711 LV", "Groningen", "NL"},
}

// seedStock is the deterministic stock of seed product i (0-based) in each
// warehouse: every product in AMS1, all but the first in BER1, and every
// fifth also in MAD1, so that each product is in at least two warehouses.
func seedStock(i int) map[string]int {
	s := map[string]int{
		"AMS1": 12 + (i*37)%108,
		"BER1": (i * 53) % 90,
	}
	if i%5 == 0 {
		s["MAD1"] = 10 + (i*29)%40
	}
	return s
}

// seedClock returns a clock that starts at seedEpoch and advances a second
// per reading.
func seedClock() func() time.Time {
	t := seedEpoch.Add(-time.Second)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

// Seed loads the demo data set into an empty database: 50 products, 20
// customers, and stock for every product. It goes through the modules' APIs,
// in one transaction, so the data obeys the same rules as any other. It does
// nothing when any of the modules already holds data, and gives the same
// rows, ids and timestamps every time.
func Seed(ctx context.Context, gdb *gorm.DB) error {
	m := newModules(gdb, seedClock(), 0)
	return db.Transact(ctx, gdb, func(ctx context.Context) error {
		for _, count := range []func(context.Context) (int64, error){m.catalog.Count, m.customers.Count, m.inventory.Count} {
			n, err := count(ctx)
			if err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
		}
		for i, sp := range seedProducts {
			active := sp.active
			p, err := m.catalog.Create(ctx, catalog.NewProduct{
				SKU: sp.sku, Name: sp.name, Description: sp.description,
				PriceCents: sp.priceCents, Currency: "EUR", Active: &active,
			})
			if err != nil {
				return fmt.Errorf("product %s: %w", sp.sku, err)
			}
			for _, wh := range []string{"AMS1", "BER1", "MAD1"} {
				qty, ok := seedStock(i)[wh]
				if !ok || qty == 0 {
					continue
				}
				if _, err := m.inventory.Adjust(ctx, p.Ref, inventory.Adjustment{Warehouse: wh, Delta: qty, Reason: "opening stock"}); err != nil {
					return fmt.Errorf("stock of %s in %s: %w", sp.sku, wh, err)
				}
			}
		}
		for _, sc := range seedCustomers {
			_, err := m.customers.Create(ctx, customers.NewCustomer{
				Email: sc.email, Name: sc.name,
				Address: &customers.Address{Line1: sc.line1, Line2: sc.line2, PostalCode: sc.postalCode, City: sc.city, Country: sc.country},
			})
			if err != nil {
				return fmt.Errorf("customer %s: %w", sc.email, err)
			}
		}
		return nil
	})
}
