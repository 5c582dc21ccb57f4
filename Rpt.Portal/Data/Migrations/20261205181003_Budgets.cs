using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class Budgets : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "api_key_id",
                table: "usage_events",
                type: "TEXT",
                maxLength: 36,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "project",
                table: "usage_events",
                type: "TEXT",
                maxLength: 128,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "project",
                table: "api_keys",
                type: "TEXT",
                maxLength: 128,
                nullable: true);

            migrationBuilder.CreateTable(
                name: "budgets",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "TEXT", nullable: false),
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    scope = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    subject = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    micro_credits = table.Column<long>(type: "INTEGER", nullable: false),
                    window_kind = table.Column<string>(type: "TEXT", maxLength: 8, nullable: false),
                    mode = table.Column<string>(type: "TEXT", maxLength: 8, nullable: false),
                    alert_at = table.Column<string>(type: "TEXT", maxLength: 32, nullable: false),
                    created_at = table.Column<long>(type: "INTEGER", nullable: false),
                    created_by = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_budgets", x => x.id);
                    table.CheckConstraint("ck_budget_positive", "micro_credits > 0");
                });

            migrationBuilder.CreateTable(
                name: "usage_scopes",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    scope = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    period_start = table.Column<DateOnly>(type: "TEXT", nullable: false),
                    value = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    calls = table.Column<long>(type: "INTEGER", nullable: false),
                    micro_credits = table.Column<long>(type: "INTEGER", nullable: false),
                    last_day = table.Column<DateOnly>(type: "TEXT", nullable: false),
                    day_calls = table.Column<long>(type: "INTEGER", nullable: false),
                    day_micro_credits = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_usage_scopes", x => new { x.tenant_id, x.scope, x.period_start, x.value });
                });

            migrationBuilder.CreateIndex(
                name: "ix_budgets_subject",
                table: "budgets",
                columns: new[] { "tenant_id", "scope", "subject", "window_kind" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "budgets");

            migrationBuilder.DropTable(
                name: "usage_scopes");

            migrationBuilder.DropColumn(
                name: "api_key_id",
                table: "usage_events");

            migrationBuilder.DropColumn(
                name: "project",
                table: "usage_events");

            migrationBuilder.DropColumn(
                name: "project",
                table: "api_keys");
        }
    }
}
