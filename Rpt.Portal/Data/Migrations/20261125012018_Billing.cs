using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class Billing : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "cancel_at_period_end",
                table: "tenants",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<long>(
                name: "payment_failed_at",
                table: "tenants",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "payment_failed_invoice_id",
                table: "tenants",
                type: "TEXT",
                maxLength: 128,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "payment_failed_invoice_url",
                table: "tenants",
                type: "TEXT",
                maxLength: 1000,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "pending_plan_code",
                table: "tenants",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<DateOnly>(
                name: "pending_plan_from",
                table: "tenants",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "stripe_subscription_id",
                table: "tenants",
                type: "TEXT",
                maxLength: 128,
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "subscription_state_at",
                table: "tenants",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "stripe_events",
                columns: table => new
                {
                    id = table.Column<string>(type: "TEXT", maxLength: 255, nullable: false),
                    type = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    created_at = table.Column<long>(type: "INTEGER", nullable: false),
                    received_at = table.Column<long>(type: "INTEGER", nullable: false),
                    processed_at = table.Column<long>(type: "INTEGER", nullable: true),
                    tenant_id = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    outcome = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true),
                    attempts = table.Column<int>(type: "INTEGER", nullable: false),
                    last_error = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true),
                    payload = table.Column<string>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_stripe_events", x => x.id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_tenants_stripe_customer_id",
                table: "tenants",
                column: "stripe_customer_id",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_stripe_events_tenant_id_type",
                table: "stripe_events",
                columns: new[] { "tenant_id", "type" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "stripe_events");

            migrationBuilder.DropIndex(
                name: "IX_tenants_stripe_customer_id",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "cancel_at_period_end",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "payment_failed_at",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "payment_failed_invoice_id",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "payment_failed_invoice_url",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "pending_plan_code",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "pending_plan_from",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "stripe_subscription_id",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "subscription_state_at",
                table: "tenants");
        }
    }
}
