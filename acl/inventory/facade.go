package inventory

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/inventory/domain"
	"github.com/stranglerkit/strangler/extracted/inventory/service"
	"github.com/stranglerkit/strangler/httpx"
)

// Facade serves the monolith's /api/inventory contract from the inventory
// service: the same paths, JSON shapes, status codes and problem types, so
// that the proxy can send the module's traffic to the service without
// clients noticing. Reads come from the legacy_stock view of the service's
// database (its items with legacy keys, in the monolith's order); writes
// are translated to the service's operations and their results back.
type Facade struct {
	svc  *service.Service
	maps *Mapper
	db   *gorm.DB
}

// NewFacade returns the facade over svc.
func NewFacade(svc *service.Service, maps *Mapper) *Facade {
	return &Facade{svc: svc, maps: maps, db: svc.DB()}
}

// Register mounts the legacy routes on g, the /api/inventory group.
func (f *Facade) Register(g *echo.Group) {
	g.GET("/warehouses", f.warehouses)
	g.GET("/stock", f.list)
	g.GET("/stock/:ref", f.stock)
	g.POST("/stock/:ref/adjustments", f.adjust)
	g.POST("/stock/:ref/reservations", f.move(domain.KindReserve))
	g.POST("/stock/:ref/releases", f.move(domain.KindRelease))
	g.POST("/stock/:ref/shipments", f.move(domain.KindShip))
}

// Limits of the legacy contract.
const (
	maxQuantity  = 1_000_000
	maxReasonLen = 200
	defaultLimit = 20
	maxLimit     = 100
	maxCursorLen = 512
	// listName tags the cursors of the stock list. The facade hands out
	// the same cursors as the monolith, so that a client paging through
	// the list may cross from one side to the other during a canary.
	listName = "inventory.stock"
)

type legacyRow struct {
	ProductRef    string    `gorm:"column:product_ref"`
	WarehouseCode string    `gorm:"column:warehouse_code"`
	OnHand        int       `gorm:"column:on_hand"`
	Reserved      int       `gorm:"column:reserved"`
	QtyAvailable  int       `gorm:"column:qty_available"`
	Version       int       `gorm:"column:version"`
	UpdatedAt     time.Time `gorm:"column:updated_at"`
}

func (r legacyRow) level() Level {
	return Level{ProductRef: r.ProductRef, Warehouse: r.WarehouseCode, OnHand: r.OnHand, Reserved: r.Reserved,
		Available: r.QtyAvailable, Version: r.Version, UpdatedAt: r.UpdatedAt.UTC()}
}

type warehouseList struct {
	Items []Warehouse `json:"items"`
}

func (f *Facade) warehouses(c echo.Context) error {
	if err := httpx.NewQuery(c).Err(); err != nil {
		return err
	}
	var ws []Warehouse
	err := db.Conn(c.Request().Context(), f.db).Raw(`SELECT a.legacy_code AS code, w.name AS name, w.country AS country
FROM acl_warehouses a JOIN warehouses w ON w.id = a.warehouse ORDER BY a.legacy_code`).Scan(&ws).Error
	if err != nil {
		return fmt.Errorf("list warehouses: %w", err)
	}
	if ws == nil {
		ws = []Warehouse{}
	}
	return c.JSON(http.StatusOK, warehouseList{Items: ws})
}

type position struct {
	ProductRef string `json:"ref"`
	Warehouse  string `json:"wh"`
}

type cursorEnvelope struct {
	List string          `json:"l"`
	Pos  json.RawMessage `json:"p"`
}

func encodeCursor(p position) string {
	pos, _ := json.Marshal(p)
	b, _ := json.Marshal(cursorEnvelope{List: listName, Pos: pos})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (position, error) {
	short := s
	if len(short) > 40 {
		short = short[:40] + "…"
	}
	bad := httpx.BadRequest("cursor %q is not a cursor of this list; pass next_cursor from the previous page unchanged", short)
	var p position
	if len(s) > maxCursorLen {
		return p, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return p, bad
	}
	var env cursorEnvelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.List != listName || len(env.Pos) == 0 {
		return p, bad
	}
	dec = json.NewDecoder(bytes.NewReader(env.Pos))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, bad
	}
	return p, nil
}

func (f *Facade) list(c echo.Context) error {
	q := httpx.NewQuery(c, "warehouse", "in_stock", "limit", "cursor")
	warehouse := NormalizeWarehouseCode(q.String("warehouse"))
	inStock := q.Bool("in_stock")
	limit := q.Limit(maxLimit)
	cursor := q.String("cursor")
	if err := q.Err(); err != nil {
		return err
	}
	if warehouse != "" && !ValidWarehouseCode(warehouse) {
		return httpx.BadRequest("warehouse must be a code such as AMS1, not %q", warehouse)
	}
	if limit == 0 {
		limit = defaultLimit
	}
	var after position
	if cursor != "" {
		var err error
		if after, err = decodeCursor(cursor); err != nil {
			return err
		}
	}
	tx := db.Conn(c.Request().Context(), f.db).Table("legacy_stock").
		Where("(product_ref > ? OR (product_ref = ? AND warehouse_code > ?))", after.ProductRef, after.ProductRef, after.Warehouse)
	if warehouse != "" {
		tx = tx.Where("warehouse_code = ?", warehouse)
	}
	if inStock != nil {
		if *inStock {
			tx = tx.Where("qty_available > 0")
		} else {
			tx = tx.Where("qty_available = 0")
		}
	}
	var rows []legacyRow
	if err := tx.Order("product_ref, warehouse_code").Limit(limit + 1).Find(&rows).Error; err != nil {
		return fmt.Errorf("list stock: %w", err)
	}
	out := Page{Items: make([]Level, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			last := rows[i-1]
			out.NextCursor = encodeCursor(position{ProductRef: last.ProductRef, Warehouse: last.WarehouseCode})
			break
		}
		out.Items = append(out.Items, r.level())
	}
	return c.JSON(http.StatusOK, out)
}

func checkRef(ref string) error {
	if _, err := ParseProductRef(ref); err != nil {
		return httpx.BadRequest("%s", err.Error())
	}
	return nil
}

func (f *Facade) stock(c echo.Context) error {
	ref := c.Param("ref")
	if err := checkRef(ref); err != nil {
		return err
	}
	var rows []legacyRow
	if err := db.Conn(c.Request().Context(), f.db).Table("legacy_stock").Where("product_ref = ?", ref).Order("warehouse_code").Find(&rows).Error; err != nil {
		return fmt.Errorf("stock of %s: %w", ref, err)
	}
	if len(rows) == 0 {
		return httpx.NotFound("no stock is recorded for %s", ref)
	}
	out := ProductStock{ProductRef: ref, Warehouses: make([]Level, 0, len(rows))}
	for _, r := range rows {
		out.OnHand += r.OnHand
		out.Reserved += r.Reserved
		out.Available += r.QtyAvailable
		out.Warehouses = append(out.Warehouses, r.level())
	}
	return c.JSON(http.StatusOK, out)
}

// validateAdjustment applies the monolith's rules to a legacy adjustment.
func validateAdjustment(a *Adjustment) error {
	var v httpx.Validator
	a.Warehouse = NormalizeWarehouseCode(a.Warehouse)
	checkWarehouseField(&v, a.Warehouse, true)
	v.Check(a.Delta != 0, "delta", "must not be zero")
	v.Check(a.Delta >= -maxQuantity && a.Delta <= maxQuantity, "delta", fmt.Sprintf("must be between -%d and %d", maxQuantity, maxQuantity))
	v.Check(utf8.RuneCountInString(a.Reason) <= maxReasonLen, "reason", fmt.Sprintf("must be at most %d characters", maxReasonLen))
	return v.Err()
}

// validateMove applies the monolith's rules to a legacy move.
func validateMove(m *Move, warehouseRequired bool) error {
	var v httpx.Validator
	m.Warehouse = NormalizeWarehouseCode(m.Warehouse)
	checkWarehouseField(&v, m.Warehouse, warehouseRequired)
	v.Check(m.Quantity >= 1 && m.Quantity <= maxQuantity, "quantity", fmt.Sprintf("must be between 1 and %d, not %d", maxQuantity, m.Quantity))
	v.Check(utf8.RuneCountInString(m.Reference) <= maxReasonLen, "reference", fmt.Sprintf("must be at most %d characters", maxReasonLen))
	return v.Err()
}

func checkWarehouseField(v *httpx.Validator, code string, required bool) {
	switch {
	case code == "":
		v.Check(!required, "warehouse", "is required")
	case !ValidWarehouseCode(code):
		v.Add("warehouse", fmt.Sprintf("must be a code of three letters and a digit such as AMS1, not %q", code))
	}
}

func notOwner() error {
	return httpx.Conflict("not-owner", "Not the owner",
		"the inventory service is a read replica until the ownership flip; writes go to the monolith")
}

func (f *Facade) adjust(c echo.Context) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	if err := checkRef(ref); err != nil {
		return err
	}
	var in Adjustment
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	if err := validateAdjustment(&in); err != nil {
		return err
	}
	if !f.svc.Owner() {
		return notOwner()
	}
	wh, ok := WarehouseID(in.Warehouse)
	if !ok {
		return httpx.Unprocessable("unknown-warehouse", "Unknown warehouse", "no warehouse has the code %s", in.Warehouse)
	}
	sku, ok, err := f.maps.SKU(ctx, ref)
	if err != nil {
		return err
	}
	if !ok {
		return httpx.Unprocessable("unknown-product", "Unknown product", "the catalog has no product %s", ref)
	}
	it, err := f.svc.Adjust(ctx, sku, domain.Adjustment{Warehouse: wh, Delta: in.Delta, Reason: in.Reason})
	if err != nil {
		return f.problem(err, ref, in.Warehouse)
	}
	return c.JSON(http.StatusOK, ToLevel(it, ref, in.Warehouse))
}

func (f *Facade) move(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		ref := c.Param("ref")
		if err := checkRef(ref); err != nil {
			return err
		}
		var in Move
		if err := httpx.DecodeJSON(c, &in); err != nil {
			return err
		}
		if err := validateMove(&in, kind != domain.KindReserve); err != nil {
			return err
		}
		if !f.svc.Owner() {
			return notOwner()
		}
		// The monolith answers a move on a level that cannot exist the
		// way it answers one on a missing level: out of stock for a
		// reservation, not found for a release or shipment.
		missing := func() error {
			where := "any one warehouse"
			if in.Warehouse != "" {
				where = in.Warehouse
			}
			if kind == domain.KindReserve {
				return httpx.Conflict("out-of-stock", "Out of stock", "not enough stock to reserve %d of %s in %s", in.Quantity, ref, where)
			}
			return httpx.NotFound("no stock of %s is recorded in %s", ref, in.Warehouse)
		}
		var wh string
		if in.Warehouse != "" {
			var ok bool
			if wh, ok = WarehouseID(in.Warehouse); !ok {
				return missing()
			}
		}
		sku, ok, err := f.maps.SKU(ctx, ref)
		if err != nil {
			return err
		}
		if !ok {
			return missing()
		}
		m := domain.Move{Warehouse: wh, Quantity: in.Quantity, Reference: in.Reference}
		var it domain.Item
		switch kind {
		case domain.KindReserve:
			it, err = f.svc.Reserve(ctx, sku, m)
		case domain.KindRelease:
			it, err = f.svc.Release(ctx, sku, m)
		default:
			it, err = f.svc.Ship(ctx, sku, m)
		}
		if err != nil {
			return f.problem(err, ref, in.Warehouse)
		}
		code, ok := WarehouseCode(it.Warehouse)
		if !ok {
			return fmt.Errorf("the ACL has no legacy code for warehouse %s", it.Warehouse)
		}
		return c.JSON(http.StatusOK, ToLevel(it, ref, code))
	}
}

// problem turns a service error into the legacy contract's problem, in the
// legacy's words (reference and warehouse code rather than SKU and id).
func (f *Facade) problem(err error, ref, code string) error {
	var p *httpx.Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, domain.ErrNotOwner):
		return notOwner()
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("no stock of %s is recorded in %s", ref, code)
	case errors.Is(err, domain.ErrOutOfStock):
		where := code
		if where == "" {
			where = "any one warehouse"
		}
		return httpx.Conflict("out-of-stock", "Out of stock", "not enough stock of %s in %s", ref, where)
	case errors.Is(err, domain.ErrNotReserved):
		return httpx.Conflict("not-reserved", "Not reserved", "fewer units of %s are reserved in %s than requested", ref, code)
	case errors.Is(err, domain.ErrBelowReserved):
		return httpx.Conflict("below-reserved", "Stock below reserved", "the adjustment would leave fewer units of %s on hand in %s than are reserved", ref, code)
	case errors.Is(err, domain.ErrUnknownWarehouse):
		return httpx.Unprocessable("unknown-warehouse", "Unknown warehouse", "no warehouse has the code %s", code)
	case errors.Is(err, domain.ErrUnknownProduct):
		return httpx.Unprocessable("unknown-product", "Unknown product", "the catalog has no product %s", ref)
	}
	return err
}
