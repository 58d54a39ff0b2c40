// Package web holds the HTTP helpers the shop's modules share: path
// parameters and responses. Strict query parsing is httpx.Query.
package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
)

// PathID reads the positive integer path parameter name.
func PathID(c echo.Context, name string) (int64, error) {
	s := c.Param(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, httpx.BadRequest("%s must be a positive integer, not %q", name, s)
	}
	return id, nil
}

// Created answers 201 with the new resource and its Location.
func Created(c echo.Context, location string, v any) error {
	c.Response().Header().Set(echo.HeaderLocation, location)
	return c.JSON(http.StatusCreated, v)
}
