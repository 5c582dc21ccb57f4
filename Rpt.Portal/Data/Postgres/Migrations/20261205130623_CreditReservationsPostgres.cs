using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class CreditReservationsPostgres : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "credit_reservations",
                columns: table => new
                {
                    tenant_id = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    id = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    job_id = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: true),
                    held_micro_credits = table.Column<long>(type: "bigint", nullable: false),
                    job_micro_at_hold = table.Column<long>(type: "bigint", nullable: false),
                    created_at = table.Column<long>(type: "bigint", nullable: false),
                    expires_at = table.Column<long>(type: "bigint", nullable: false),
                    released_at = table.Column<long>(type: "bigint", nullable: true),
                    drawn_at_release_micro_credits = table.Column<long>(type: "bigint", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_credit_reservations", x => new { x.tenant_id, x.id });
                    table.CheckConstraint("ck_reservation_held_positive", "held_micro_credits > 0");
                });

            migrationBuilder.CreateIndex(
                name: "ix_reservations_tenant_active",
                table: "credit_reservations",
                columns: new[] { "tenant_id", "released_at", "expires_at" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "credit_reservations");
        }
    }
}
