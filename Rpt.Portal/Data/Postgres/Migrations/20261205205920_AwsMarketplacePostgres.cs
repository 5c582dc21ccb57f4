using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class AwsMarketplacePostgres : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "marketplace_accounts",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    customer_identifier = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    customer_aws_account_id = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    product_code = table.Column<string>(type: "character varying(255)", maxLength: 255, nullable: false),
                    baseline_micro_credits = table.Column<long>(type: "bigint", nullable: false),
                    linked_at = table.Column<long>(type: "bigint", nullable: false),
                    status = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    status_at = table.Column<long>(type: "bigint", nullable: false),
                    reporting_stopped = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: true),
                    reporting_stopped_at = table.Column<long>(type: "bigint", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_marketplace_accounts", x => x.tenant_id);
                });

            migrationBuilder.CreateTable(
                name: "marketplace_notifications",
                columns: table => new
                {
                    message_id = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    action = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    customer_identifier = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    sent_at = table.Column<long>(type: "bigint", nullable: false),
                    outcome = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: false),
                    received_at = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_marketplace_notifications", x => x.message_id);
                });

            migrationBuilder.CreateTable(
                name: "marketplace_registrations",
                columns: table => new
                {
                    id = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    token_hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    customer_identifier = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    customer_aws_account_id = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    product_code = table.Column<string>(type: "character varying(255)", maxLength: 255, nullable: false),
                    created_at = table.Column<long>(type: "bigint", nullable: false),
                    tenant_id = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: true),
                    completed_at = table.Column<long>(type: "bigint", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_marketplace_registrations", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "marketplace_reports",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    sequence = table.Column<long>(type: "bigint", nullable: false),
                    customer_aws_account_id = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    product_code = table.Column<string>(type: "character varying(255)", maxLength: 255, nullable: false),
                    dimension = table.Column<string>(type: "character varying(255)", maxLength: 255, nullable: false),
                    timestamp = table.Column<long>(type: "bigint", nullable: false),
                    quantity = table.Column<long>(type: "bigint", nullable: false),
                    cumulative = table.Column<long>(type: "bigint", nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    attempts = table.Column<int>(type: "integer", nullable: false),
                    next_attempt_at = table.Column<long>(type: "bigint", nullable: false),
                    answered_at = table.Column<long>(type: "bigint", nullable: true),
                    metering_record_id = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: true),
                    last_error = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: true),
                    created_at = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_marketplace_reports", x => new { x.tenant_id, x.sequence });
                });

            migrationBuilder.CreateIndex(
                name: "IX_marketplace_accounts_customer_identifier",
                table: "marketplace_accounts",
                column: "customer_identifier",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_marketplace_notifications_customer_identifier_sent_at",
                table: "marketplace_notifications",
                columns: new[] { "customer_identifier", "sent_at" });

            migrationBuilder.CreateIndex(
                name: "IX_marketplace_registrations_token_hash",
                table: "marketplace_registrations",
                column: "token_hash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_marketplace_reports_status_next_attempt_at",
                table: "marketplace_reports",
                columns: new[] { "status", "next_attempt_at" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "marketplace_accounts");

            migrationBuilder.DropTable(
                name: "marketplace_notifications");

            migrationBuilder.DropTable(
                name: "marketplace_registrations");

            migrationBuilder.DropTable(
                name: "marketplace_reports");
        }
    }
}
